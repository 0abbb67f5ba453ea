"""The catalog: paged listing with filters, one action with its contract and config."""

from __future__ import annotations

import httpx
import pytest

from tests.dataactions.emulator.support import CUSTOMER, ECHO, ORDER, SECURE

ACTIONS = "/api/v2/integrations/actions"


def test_the_listing_pages_like_an_action_entity_listing(api: httpx.Client) -> None:
    page = api.get(ACTIONS, params={"pageSize": 2, "pageNumber": 2}).json()
    assert [entity["id"] for entity in page["entities"]] == ["custom_-_credit-check", SECURE]
    assert (page["pageSize"], page["pageNumber"], page["total"], page["pageCount"]) == (2, 2, 5, 3)
    assert page["nextUri"] == f"{ACTIONS}?pageSize=2&pageNumber=3"
    assert page["previousUri"] == f"{ACTIONS}?pageSize=2&pageNumber=1"
    assert (page["firstUri"], page["lastUri"]) == (
        f"{ACTIONS}?pageSize=2&pageNumber=1",
        f"{ACTIONS}?pageSize=2&pageNumber=3",
    )
    assert all("contract" not in entity for entity in page["entities"])


def test_the_default_page_holds_25_and_has_no_next(api: httpx.Client) -> None:
    page = api.get(ACTIONS).json()
    assert (page["pageSize"], page["pageNumber"], page["nextUri"], page["previousUri"]) == (25, 1, None, None)


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"name": "ORDER stat"}, [ORDER]),
        ({"category": "Testing"}, [ECHO]),
        ({"secure": "true"}, [SECURE]),
        ({"ids": f"{CUSTOMER},{ECHO}"}, [CUSTOMER, ECHO]),
        ({"sortBy": "name", "sortOrder": "DESC", "category": "Risk"}, [SECURE, "custom_-_credit-check"]),
    ],
)
def test_the_listing_filters(api: httpx.Client, params: dict[str, str], ids: list[str]) -> None:
    page = api.get(ACTIONS, params=params).json()
    assert [entity["id"] for entity in page["entities"]] == ids
    assert page["total"] == len(ids)


def test_more_than_50_ids_is_a_bad_request(api: httpx.Client) -> None:
    response = api.get(ACTIONS, params={"ids": ",".join(f"custom_-_{n}" for n in range(51))})
    assert (response.status_code, response.json()["code"]) == (400, "bad.request")


def test_an_action_has_the_entity_fields(api: httpx.Client) -> None:
    action = api.get(f"{ACTIONS}/{SECURE}").json()
    assert set(action) == {"id", "name", "integrationId", "category", "version", "secure", "selfUri"}
    assert (action["secure"], action["selfUri"]) == (True, f"{ACTIONS}/{SECURE}")


def test_expand_contract_adds_the_input_and_success_schemas(api: httpx.Client) -> None:
    contract = api.get(f"{ACTIONS}/{CUSTOMER}", params={"expand": "contract"}).json()["contract"]
    assert contract["input"]["inputSchema"]["properties"]["phoneNumber"]["pattern"] == r"^\+?[0-9]{7,15}$"
    assert contract["output"]["successSchema"]["properties"]["accounts"]["type"] == "array"


def test_include_config_adds_timeout_request_and_response(api: httpx.Client) -> None:
    config = api.get(f"{ACTIONS}/{ECHO}", params={"includeConfig": "true"}).json()["config"]
    assert config["timeoutSeconds"] == 0.3
    assert {"requestUrlTemplate", "requestType"} <= set(config["request"]) and "successTemplate" in config["response"]


def test_an_unknown_action_is_not_found(api: httpx.Client) -> None:
    response = api.get(f"{ACTIONS}/custom_-_nope")
    assert (response.status_code, response.json()["code"]) == (404, "not.found")


def test_an_unknown_path_answers_an_error_body_with_the_correlation_id(api: httpx.Client) -> None:
    response = api.get("/api/v2/not/a/thing")
    body = response.json()
    assert response.status_code == 404
    assert set(body) == {
        "message",
        "code",
        "status",
        "messageWithParams",
        "messageParams",
        "contextId",
        "details",
        "errors",
    }
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]
