"""OAuth client credentials and bearer tokens: issue, reject, expire, revoke."""

from __future__ import annotations

import httpx

from dataactions.emulator import EmulatorServer
from tests.dataactions.emulator.support import CLIENT, CUSTOMER, PHONE, bearer, eventually, fetch_token

ACTIONS = "/api/v2/integrations/actions"


def test_a_token_is_opaque_bearer_with_the_scenario_lifetime(http: httpx.Client, emu: EmulatorServer) -> None:
    response = http.post("/oauth/token", auth=CLIENT, data={"grant_type": "client_credentials"})
    body = response.json()
    assert response.status_code == 200
    assert (body["token_type"], body["expires_in"]) == ("bearer", 86400)
    assert len(body["access_token"]) >= 32 and body["access_token"] != fetch_token(http)
    assert emu.stats()["tokens_issued"] == 2


def test_wrong_credentials_are_refused_as_invalid_client(http: httpx.Client) -> None:
    response = http.post("/oauth/token", auth=("demo-client", "wrong"), data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "description": "authentication failed",
        "error_description": "authentication failed",
    }


def test_another_grant_type_is_unsupported(http: httpx.Client) -> None:
    response = http.post("/oauth/token", auth=CLIENT, data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_request_without_a_token_needs_authentication(http: httpx.Client) -> None:
    response = http.get(ACTIONS)
    body = response.json()
    assert response.status_code == 401 and body["code"] == "authentication.required"
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]


def test_an_unknown_token_has_bad_credentials(http: httpx.Client) -> None:
    response = http.get(ACTIONS, headers=bearer("not-a-token"))
    assert (response.status_code, response.json()["code"]) == (401, "bad.credentials")


def test_revoked_tokens_are_refused(http: httpx.Client, token: str, emu: EmulatorServer) -> None:
    assert http.get(ACTIONS, headers=bearer(token)).status_code == 200
    assert emu.revoke_tokens() >= 1
    response = http.post(f"{ACTIONS}/{CUSTOMER}/execute", headers=bearer(token), json={"phoneNumber": PHONE})
    assert (response.status_code, response.json()["code"]) == (401, "bad.credentials")
    assert emu.stats()["executions"] == {}


def test_an_expired_token_is_refused_while_a_new_one_works(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(token_lifetime_seconds=0.2)
    short_lived = http.post("/oauth/token", auth=CLIENT, data={"grant_type": "client_credentials"}).json()
    assert short_lived["expires_in"] == 0
    eventually(lambda: http.get(ACTIONS, headers=bearer(short_lived["access_token"])).status_code == 401)
    emu.configure(token_lifetime_seconds=86400)
    assert http.get(ACTIONS, headers=bearer(fetch_token(http))).status_code == 200
