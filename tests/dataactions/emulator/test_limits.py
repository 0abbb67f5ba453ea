"""Per-token rate limit, concurrent-execution limit, and the Retry-After bookkeeping."""

from __future__ import annotations

import asyncio

import httpx

from dataactions.emulator import EmulatorServer
from tests.dataactions.emulator.support import CUSTOMER, PHONE, bearer, eventually, fetch_token

EXECUTE = f"/api/v2/integrations/actions/{CUSTOMER}/execute"
BODY = {"phoneNumber": PHONE}


def test_past_the_rate_limit_a_token_gets_429_with_retry_after(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(rate_limit={"requests": 3, "per_seconds": 60})
    assert [api.post(EXECUTE, json=BODY).status_code for _ in range(3)] == [200, 200, 200]
    response = api.post(EXECUTE, json=BODY)
    wait = int(response.headers["Retry-After"])
    assert response.status_code == 429 and 59 <= wait <= 60
    body = response.json()
    assert body["code"] == "too.many.requests.retry.after"
    assert body["message"] == f"Rate limit exceeded the maximum. Retry the request in [{wait}] seconds"
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]
    assert emu.stats()["rate_limited"] == 1 and emu.stats()["executions"] == {CUSTOMER: 3}


def test_each_token_has_its_own_rate_window(http: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(rate_limit={"requests": 2, "per_seconds": 60})
    first, second = fetch_token(http), fetch_token(http)
    statuses = [http.post(EXECUTE, headers=bearer(first), json=BODY).status_code for _ in range(3)]
    statuses += [http.post(EXECUTE, headers=bearer(second), json=BODY).status_code for _ in range(3)]
    assert statuses == [200, 200, 429, 200, 200, 429]


def test_the_rate_limit_covers_every_api_call_but_not_the_token_endpoint(
    http: httpx.Client, api: httpx.Client, emu: EmulatorServer
) -> None:
    emu.configure(rate_limit={"requests": 1, "per_seconds": 60})
    assert api.get("/api/v2/integrations/actions").status_code == 200
    assert api.get("/api/v2/integrations/actions").status_code == 429
    assert (
        http.post(
            "/oauth/token", auth=("demo-client", "demo-secret"), data={"grant_type": "client_credentials"}
        ).status_code
        == 200
    )


def test_requests_sent_during_a_retry_after_wait_are_counted(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(rate_limit={"requests": 1, "per_seconds": 60}, retry_after_grace_seconds=0)
    assert [api.post(EXECUTE, json=BODY).status_code for _ in range(2)] == [200, 429]
    assert emu.stats()["requests_before_retry_after"] == 0
    assert api.post(EXECUTE, json=BODY).status_code == 429
    assert emu.stats()["requests_before_retry_after"] == 1


def test_reset_clears_the_rate_windows_and_counters(api: httpx.Client, emu: EmulatorServer) -> None:
    emu.configure(rate_limit={"requests": 1, "per_seconds": 60})
    assert [api.post(EXECUTE, json=BODY).status_code for _ in range(2)] == [200, 429]
    emu.reset()
    assert emu.stats()["rate_limited"] == 0
    assert api.post(EXECUTE, json=BODY).status_code == 200


def test_past_the_concurrent_execution_limit_a_call_gets_429(emu: EmulatorServer, token: str) -> None:
    emu.configure(concurrent_executions_max=2, latency=2000)
    statuses = asyncio.run(_two_slow_then_one(emu, token))
    assert sorted(statuses) == [200, 200, 429]
    stats = emu.stats()
    assert (stats["max_in_flight"], stats["concurrency_limited"], stats["in_flight"]) == (2, 1, 0)


async def _two_slow_then_one(emu: EmulatorServer, token: str) -> list[int]:
    async with httpx.AsyncClient(
        base_url=emu.base_url, headers=bearer(token), trust_env=False, verify=False, timeout=10
    ) as client:
        slow = [asyncio.create_task(client.post(EXECUTE, json={"phoneNumber": f"+1555000000{n}"})) for n in range(2)]
        await asyncio.to_thread(eventually, lambda: emu.stats(include_inputs=False)["in_flight"] == 2)
        third = await client.post(EXECUTE, json=BODY)
        assert third.headers["Retry-After"] == "1"
        return [third.status_code, *[(await task).status_code for task in slow]]
