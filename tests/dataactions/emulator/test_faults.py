"""Injected faults: statuses, remote failures, timeouts, broken bodies and connections, selectors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dataactions.emulator import EmulatorServer
from tests.dataactions.emulator.support import CUSTOMER, ECHO, ORDER, PHONE

ACTIONS = "/api/v2/integrations/actions"
EXECUTE = f"{ACTIONS}/{CUSTOMER}/execute"
BODY = {"phoneNumber": PHONE}


def _fault(**fields: Any) -> list[dict[str, Any]]:
    return [{"kind": "status", **fields}]


def test_a_503_for_the_first_two_attempts_of_an_input_then_success(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=503, match={"phoneNumber": PHONE}, times=2))
    statuses = [api.post(EXECUTE, json=BODY).status_code for _ in range(3)]
    other = api.post(EXECUTE, json={"phoneNumber": "+15550000001"}).status_code
    assert (statuses, other) == ([503, 503, 200], 200)
    assert emu.input_count(CUSTOMER, BODY) == 3
    assert emu.stats()["faults_fired"] == [2]


def test_a_503_is_a_platform_service_unavailable(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=503))
    body = api.post(EXECUTE, json=BODY).json()
    assert (body["status"], body["code"], body["details"]) == (503, "service.unavailable", [])


def test_a_remote_500_looks_like_the_real_function_failure(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=500))
    response = api.post(EXECUTE, json=BODY)
    body, correlation = response.json(), response.headers["ININ-Correlation-Id"]
    assert (response.status_code, body["code"], body["message"]) == (
        500,
        "internal.server.error",
        "Internal Server Error",
    )
    assert body["details"] == [{"errorCode": "ACTION.REMOTE_ENDPOINT"}] and body["contextId"] == correlation
    nested = body["errors"][0]
    assert (nested["code"], nested["status"]) == ("INTERNAL_SERVER_ERROR", 500)
    assert nested["message"].startswith("REST call for action execute failed. Message: ")
    assert nested["message"].endswith(f"[{correlation}]")


def test_a_remote_400_is_bad_request_style(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=400))
    body = api.post(EXECUTE, json=BODY).json()
    assert (body["status"], body["details"][0]["errorCode"], body["errors"][0]["code"]) == (
        400,
        "ACTION.REMOTE_ENDPOINT",
        "BAD_REQUEST",
    )
    assert "use test mode" in body["errors"][0]["message"]


@pytest.mark.parametrize(("status", "code"), [(502, "bad.gateway"), (504, "request.timeout")])
def test_gateway_statuses_are_remote_failures(api: httpx.Client, emu: EmulatorServer, status: int, code: str) -> None:
    emu.configure(faults=_fault(status=status))
    body = api.post(EXECUTE, json=BODY).json()
    assert (body["status"], body["code"], body["details"]) == (status, code, [{"errorCode": "ACTION.REMOTE_ENDPOINT"}])


def test_a_429_fault_carries_its_retry_after(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=429, retry_after=7))
    response = api.post(EXECUTE, json=BODY)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert response.json()["message"] == "Rate limit exceeded the maximum. Retry the request in [7] seconds"


def test_a_remote_slower_than_timeout_seconds_gets_504_after_the_timeout(
    api: httpx.Client, emu: EmulatorServer
) -> None:
    emu.configure(latency=5000)
    body = api.post(f"{ACTIONS}/{ECHO}/execute", json={"value": 1}).json()
    assert (body["status"], body["code"], body["details"]) == (
        504,
        "request.timeout",
        [{"errorCode": "ACTION.REMOTE_ENDPOINT"}],
    )
    assert "timed out after 0.3 seconds" in body["errors"][0]["message"]


def test_a_timeout_fault_holds_until_timeout_seconds(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "timeout", "action": ECHO}])
    assert api.post(f"{ACTIONS}/{ECHO}/execute", json={"value": 1}).status_code == 504
    assert api.post(EXECUTE, json=BODY).status_code == 200


def test_malformed_json_is_a_200_whose_body_does_not_parse(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "malformed_json"}])
    response = api.post(EXECUTE, json=BODY)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_a_dropped_connection_is_a_transport_error_for_the_client(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "drop_connection", "times": 1}])
    with pytest.raises(httpx.TransportError):
        api.post(EXECUTE, json=BODY)
    assert api.post(EXECUTE, json=BODY).status_code == 200
    stats = emu.stats()
    assert (stats["dropped_connections"], stats["executions"][CUSTOMER]) == (1, 2)
    assert stats["responses"] == {"200": 1}


def test_a_revoke_token_fault_answers_401_and_the_token_stays_dead(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "revoke_token", "times": 1}])
    first, second = api.post(EXECUTE, json=BODY), api.post(EXECUTE, json=BODY)
    assert (first.status_code, first.json()["code"], second.status_code) == (401, "bad.credentials", 401)


def test_every_nth_and_action_select_the_requests(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=502, every_nth=3, action=CUSTOMER))
    statuses = [api.post(EXECUTE, json={"phoneNumber": f"+1555000000{n}"}).status_code for n in range(6)]
    assert statuses == [200, 200, 502, 200, 200, 502]
    assert api.post(f"{ACTIONS}/{ORDER}/execute", json={"orderId": "A-1"}).status_code == 200


def test_a_match_list_means_any_of_the_values(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=500, match={"phoneNumber": ["+15550000001", "+15550000003"]}))
    statuses = [api.post(EXECUTE, json={"phoneNumber": f"+1555000000{n}"}).status_code for n in range(1, 5)]
    assert statuses == [500, 200, 500, 200]


def test_seeded_rate_faults_hit_the_same_inputs_in_any_order(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=_fault(status=503, rate=0.3), seed=11)
    phones = [f"+1555{n:07d}" for n in range(60)]
    failed = _failing(api, phones)
    emu.reset()
    assert _failing(api, list(reversed(phones))) == failed
    assert 0 < len(failed) < len(phones)
    emu.configure(seed=12)
    assert _failing(api, phones) != failed


def _failing(api: httpx.Client, phones: list[str]) -> set[str]:
    return {phone for phone in phones if api.post(EXECUTE, json={"phoneNumber": phone}).status_code == 503}


def test_test_mode_reports_a_remote_failure_as_a_failed_step_with_http_200(
    api: httpx.Client, emu: EmulatorServer
) -> None:
    emu.configure(faults=_fault(status=500, endpoint="test"))
    response = api.post(f"{ACTIONS}/{CUSTOMER}/test", json=BODY)
    result = response.json()
    assert response.status_code == 200 and result["success"] is False
    failing = result["operations"][-1]
    assert (failing["name"], failing["success"], failing["error"]["code"]) == (
        "Execute request",
        False,
        "internal.server.error",
    )
    assert result["error"] == failing["error"]
    assert api.post(EXECUTE, json=BODY).status_code == 200
