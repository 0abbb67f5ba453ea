"""Workflow executions: launch, RUNNING for the flow's duration, then the scenario's outcome."""

from __future__ import annotations

from typing import Any

import httpx

from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import enrich_customer
from tests.dataactions.emulator.support import PHONE, WORKFLOW, eventually

EXECUTIONS = "/api/v2/flows/executions"
FAILING_PHONE = "+15550199999"


def _launch(api: httpx.Client, inputs: dict[str, Any], flow_id: str = WORKFLOW) -> httpx.Response:
    return api.post(EXECUTIONS, json={"flowId": flow_id, "inputData": inputs, "name": "enrich"})


def _finished(api: httpx.Client, execution_id: str) -> dict[str, Any] | None:
    execution = api.get(f"{EXECUTIONS}/{execution_id}").json()
    return execution if execution["status"] != "RUNNING" else None


def test_a_launch_answers_the_execution_id_and_flow_version(api: httpx.Client, emu: EmulatorServer) -> None:
    launched = _launch(api, {"phoneNumber": PHONE}).json()
    assert set(launched) == {"id", "name", "flowVersion", "selfUri"}
    assert launched["selfUri"] == f"{EXECUTIONS}/{launched['id']}" and launched["flowVersion"]["id"] == "1.0"
    assert emu.stats()["workflow_launches"] == 1


def test_a_workflow_completes_with_output_derived_from_its_input(api: httpx.Client) -> None:
    launched = _launch(api, {"phoneNumber": PHONE}).json()
    execution = eventually(lambda: _finished(api, launched["id"]))
    assert execution["status"] == "COMPLETED" and execution["outputData"] == enrich_customer({"phoneNumber": PHONE})
    assert execution["dateCompleted"] >= execution["dateLaunched"] and "flowErrorInfo" not in execution


def test_a_matching_input_fails_with_flow_error_info(api: httpx.Client) -> None:
    launched = _launch(api, {"phoneNumber": FAILING_PHONE}).json()
    execution = eventually(lambda: _finished(api, launched["id"]))
    assert execution["status"] == "FAILED" and "outputData" not in execution
    assert {"message", "code", "status", "contextId"} <= set(execution["flowErrorInfo"])


def test_a_never_ending_workflow_stays_running(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(workflows=[{"flow_id": "wf-forever", "name": "Forever", "duration_seconds": 0, "outcome": "RUNNING"}])
    launched = _launch(api, {}, "wf-forever").json()
    polls = [api.get(f"{EXECUTIONS}/{launched['id']}").json()["status"] for _ in range(3)]
    assert polls == ["RUNNING"] * 3 and emu.stats()["workflow_polls"] == 3


def test_an_error_outcome_reports_error(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(workflows=[{"flow_id": "wf-broken", "name": "Broken", "duration_seconds": 0, "outcome": "ERROR"}])
    execution = api.get(f"{EXECUTIONS}/{_launch(api, {}, 'wf-broken').json()['id']}").json()
    assert execution["status"] == "ERROR" and execution["flowErrorInfo"]["code"] == "flow.execution.error"


def test_an_unknown_flow_or_execution_is_not_found(api: httpx.Client) -> None:
    assert _launch(api, {}, "wf-nope").status_code == 404
    assert api.get(f"{EXECUTIONS}/00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_launch_without_flow_id_is_a_bad_request(api: httpx.Client) -> None:
    response = api.post(EXECUTIONS, json={"inputData": {}})
    assert (response.status_code, response.json()["code"]) == (400, "bad.request")
