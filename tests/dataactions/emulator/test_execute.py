"""Execute and test: contract validation, answers, flattening, body size."""

from __future__ import annotations

import httpx

from dataactions.emulator import EmulatorServer, input_digest
from dataactions.emulator.generators import customer_by_phone
from tests.dataactions.emulator.support import CUSTOMER, PHONE

ACTIONS = "/api/v2/integrations/actions"
EXECUTE = f"{ACTIONS}/{CUSTOMER}/execute"


def test_execute_answers_the_generator_output_and_counts_the_input(api: httpx.Client, emu: EmulatorServer) -> None:
    response = api.post(EXECUTE, json={"phoneNumber": PHONE})
    assert response.status_code == 200 and response.headers["ININ-Correlation-Id"]
    assert response.json() == customer_by_phone({"phoneNumber": PHONE})
    stats = emu.stats()
    assert stats["executions"] == {CUSTOMER: 1}
    assert stats["by_input"] == {CUSTOMER: {input_digest({"phoneNumber": PHONE}): 1}}


def test_flatten_dot_joins_objects_and_splits_arrays_of_objects(api: httpx.Client) -> None:
    flat = api.post(EXECUTE, params={"flatten": "true"}, json={"phoneNumber": "+15550000010"}).json()
    assert flat["customer.name"] == "Ken Hamilton" and flat["customer.vip"] is True
    assert flat["accounts.id"] == ["ACC-2884480614", "ACC-9408449159", "ACC-5461546120"]
    assert flat["accounts.balance"] == [10684.15, 12608.05, 5244.74]


def test_a_pattern_violation_names_the_field_and_the_reason(api: httpx.Client) -> None:
    body = api.post(EXECUTE, json={"phoneNumber": "call me"}).json()
    assert (body["status"], body["code"]) == (400, "bad.request")
    assert "'phoneNumber'" in body["message"] and "must match pattern" in body["message"]
    assert body["details"] == [{"errorCode": "ACTION.INPUT_VALIDATION", "fieldName": "phoneNumber"}]


def test_a_missing_required_field_is_named(api: httpx.Client) -> None:
    body = api.post(EXECUTE, json={"name": "Ada"}).json()
    assert body["status"] == 400 and "'phoneNumber' is required" in body["message"]


def test_a_body_that_is_not_a_json_object_is_a_bad_request(api: httpx.Client) -> None:
    for content in (b"[1, 2]", b"{not json"):
        response = api.post(EXECUTE, content=content, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["code"]) == (400, "bad.request")


def test_a_body_past_512000_bytes_is_too_large(api: httpx.Client, emu: EmulatorServer) -> None:
    response = api.post(EXECUTE, json={"phoneNumber": PHONE, "padding": "x" * 512_000})
    assert response.status_code == 413
    assert response.json()["message"] == "The request is over the size limit. Maximum bytes: 512000"
    assert emu.stats()["executions"] == {}


def test_test_mode_reports_each_step_and_the_final_result(api: httpx.Client, emu: EmulatorServer) -> None:
    result = api.post(f"{ACTIONS}/{CUSTOMER}/test", json={"phoneNumber": PHONE}).json()
    assert result["success"] is True and result["finalResult"] == customer_by_phone({"phoneNumber": PHONE})
    assert [operation["step"] for operation in result["operations"]] == [1, 2, 3, 4, 5]
    assert result["operations"][2]["name"] == "Execute request"
    assert emu.stats()["tests"] == {CUSTOMER: 1} and emu.stats()["executions"] == {}


def test_test_mode_reports_a_contract_violation_as_a_failed_first_step(api: httpx.Client) -> None:
    response = api.post(f"{ACTIONS}/{CUSTOMER}/test", json={"phoneNumber": "x"})
    result = response.json()
    assert response.status_code == 200 and result["success"] is False
    assert result["operations"][0]["success"] is False and result["error"]["code"] == "bad.request"
