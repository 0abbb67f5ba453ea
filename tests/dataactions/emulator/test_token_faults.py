"""Faults at the token endpoint (`endpoint: token`) and the list of issued tokens (`GET /__emulator__/tokens`)."""

from __future__ import annotations

import httpx
import pytest

from dataactions.emulator import EmulatorServer
from tests.dataactions.emulator.support import CLIENT, CUSTOMER, PHONE, bearer

GRANT = {"grant_type": "client_credentials"}


def token_statuses(http: httpx.Client, count: int) -> list[int]:
    return [http.post("/oauth/token", auth=CLIENT, data=GRANT).status_code for _ in range(count)]


def test_the_login_service_is_down_for_its_first_requests_then_back(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "status", "status": 503, "endpoint": "token", "times": 2}])
    assert token_statuses(http, 3) == [503, 503, 200]
    body = http.post("/oauth/token", auth=("nobody", "wrong"), data=GRANT).json()
    assert body["error"] == "invalid_client", "once back, credentials are checked again"
    stats = emu.stats()
    assert stats["token_responses"] == {"200": 1, "401": 1, "503": 2} and stats["faults_fired"] == [2]


def test_a_token_fault_answers_before_the_credentials_are_read(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "status", "status": 429, "endpoint": "token", "retry_after": 3, "times": 1}])
    response = http.post("/oauth/token", auth=("nobody", "wrong"), data=GRANT)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")
    assert response.json()["code"] == "too.many.requests.retry.after"


def test_faults_for_any_endpoint_leave_the_token_endpoint_alone(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(faults=[{"kind": "status", "status": 503}])
    assert token_statuses(http, 2) == [200, 200]
    token = http.post("/oauth/token", auth=CLIENT, data=GRANT).json()["access_token"]
    executed = http.post(f"/api/v2/integrations/actions/{CUSTOMER}/execute", json={"phoneNumber": PHONE},
                         headers=bearer(token))
    assert executed.status_code == 503


@pytest.mark.parametrize("fault", [{"kind": "timeout", "endpoint": "token"},
                                   {"kind": "status", "status": 503, "endpoint": "token", "action": CUSTOMER},
                                   {"kind": "status", "status": 503, "endpoint": "token", "match": {"a": 1}}])
def test_a_token_fault_is_a_status_without_action_or_match(emu: EmulatorServer, fault: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="endpoint 'token'"):
        emu.configure(faults=[fault])


def test_every_issued_token_is_listed_revoked_ones_too(http: httpx.Client, emu: EmulatorServer) -> None:
    issued = [http.post("/oauth/token", auth=CLIENT, data=GRANT).json()["access_token"] for _ in range(3)]
    emu.revoke_tokens()
    assert emu.issued_tokens()[-3:] == issued
    listed = http.get("/__emulator__/tokens").json()["tokens"][-1]
    assert listed == {"client_id": CLIENT[0], "access_token": issued[-1]}
