"""The official SDK, unchanged, against the emulator: it is the fidelity oracle for the wire shapes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PureCloudPlatformClientV2")

import PureCloudPlatformClientV2 as genesys
from PureCloudPlatformClientV2.rest import ApiException

from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import customer_by_phone, enrich_customer
from tests.dataactions.emulator.support import CLIENT, CUSTOMER, PHONE, WORKFLOW, eventually


@pytest.fixture
def sdk(emu: EmulatorServer) -> genesys.ApiClient:
    """The SDK's own login: it derives the login URL from `host`, which stays the emulator's base URL."""
    return genesys.ApiClient(host=emu.base_url).get_client_credentials_token(*CLIENT)


def test_the_sdk_gets_a_token_and_lists_actions(sdk: genesys.ApiClient, emu: EmulatorServer) -> None:
    listing = genesys.IntegrationsApi(sdk).get_integrations_actions(page_size=2, page_number=1)
    assert isinstance(listing, genesys.ActionEntityListing)
    assert (listing.page_size, listing.page_number, listing.total, listing.page_count) == (2, 1, 5, 3)
    assert listing.entities[0].id == CUSTOMER and listing.entities[0].contract is None
    assert emu.stats()["tokens_issued"] == 1


def test_the_sdk_reads_an_action_contract_into_its_models(sdk: genesys.ApiClient) -> None:
    action = genesys.IntegrationsApi(sdk).get_integrations_action(CUSTOMER, expand="contract", include_config=True)
    assert isinstance(action, genesys.Action)
    assert action.contract.input.input_schema.required == ["phoneNumber"]
    assert "customer" in action.contract.output.success_schema.properties
    assert action.config.timeout_seconds == 20


def test_the_sdk_executes_an_action(sdk: genesys.ApiClient, emu: EmulatorServer) -> None:
    answer = genesys.IntegrationsApi(sdk).post_integrations_action_execute(CUSTOMER, {"phoneNumber": PHONE})
    assert answer == customer_by_phone({"phoneNumber": PHONE})
    assert emu.input_count(CUSTOMER, {"phoneNumber": PHONE}) == 1


def test_the_sdk_tests_an_action(sdk: genesys.ApiClient) -> None:
    result = genesys.IntegrationsApi(sdk).post_integrations_action_test(CUSTOMER, {"phoneNumber": PHONE})
    assert isinstance(result, genesys.TestExecutionResult)
    assert result.success is True and all(operation.success for operation in result.operations)
    assert result.final_result == customer_by_phone({"phoneNumber": PHONE})


def test_the_sdk_launches_a_workflow_and_polls_it_to_completion(sdk: genesys.ApiClient) -> None:
    architect = genesys.ArchitectApi(sdk)
    request = genesys.FlowExecutionLaunchRequest()
    request.flow_id, request.input_data, request.name = WORKFLOW, {"phoneNumber": PHONE}, "sdk test"
    launched = architect.post_flows_executions(request)
    execution = eventually(lambda: _finished(architect.get_flows_execution(launched.id)))
    assert isinstance(execution, genesys.FlowRuntimeExecution)
    assert execution.status == "COMPLETED" and execution.name == "sdk test"
    assert execution.output_data == enrich_customer({"phoneNumber": PHONE})
    assert execution.date_completed >= execution.date_launched


def _finished(execution: genesys.FlowRuntimeExecution) -> genesys.FlowRuntimeExecution | None:
    return execution if execution.status != "RUNNING" else None


@pytest.mark.parametrize(
    ("status", "code", "call"),
    [
        (
            400,
            "bad.request",
            lambda api: api.post_integrations_action_execute(CUSTOMER, {"phoneNumber": "not a number"}),
        ),
        (404, "not.found", lambda api: api.get_integrations_action("custom_-_does-not-exist")),
        (404, "not.found", lambda api: api.post_integrations_action_execute("custom_-_does-not-exist", {})),
    ],
)
def test_sdk_errors_carry_the_status_and_an_error_body(sdk: genesys.ApiClient, status: int, code: str, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiException) as caught:
        call(genesys.IntegrationsApi(sdk))
    body = json.loads(caught.value.body)
    assert caught.value.status == status and body["code"] == code and body["status"] == status
    assert body["contextId"] == caught.value.headers["ININ-Correlation-Id"]


def test_the_sdk_without_a_token_gets_401(emu: EmulatorServer) -> None:
    with pytest.raises(ApiException) as caught:
        genesys.IntegrationsApi(genesys.ApiClient(host=emu.base_url)).get_integrations_actions()
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["code"] == "authentication.required"


def test_the_sdk_with_a_revoked_token_gets_401(sdk: genesys.ApiClient, emu: EmulatorServer) -> None:
    emu.revoke_tokens()
    with pytest.raises(ApiException) as caught:
        genesys.IntegrationsApi(sdk).get_integrations_actions()
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["code"] == "bad.credentials"
