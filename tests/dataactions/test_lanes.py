"""Several OAuth clients: one lane each (own token, own per-token rate budget), requests spread over them."""

from __future__ import annotations

import asyncio

import pytest

from dataactions.client import GenesysClient
from dataactions.emulator import EmulatorServer
from dataactions.settings import Settings, load_settings
from tests.dataactions.conftest import CLIENT_ID, CLIENT_SECRET, CUSTOMER_ACTION, phone

pytestmark = pytest.mark.anyio

SECOND_ID, SECOND_SECRET = "second-client", "second-client-secret"
CREDENTIALS = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
               {"client_id": SECOND_ID, "client_secret": SECOND_SECRET}]


def two_client_settings(emulator: EmulatorServer, **pipeline: object) -> Settings:
    genesys = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "api_base_url": emulator.base_url,
               "extra_clients": [{"client_id": SECOND_ID, "client_secret": SECOND_SECRET}]}
    return load_settings(genesys=genesys, pipeline={"rate_per_minute": 0, **pipeline})


async def execute_many(client: GenesysClient, count: int) -> None:
    await asyncio.gather(*(client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)}) for n in range(count)))


def by_client(emulator: EmulatorServer) -> dict[str, dict[str, int]]:
    return emulator.stats(include_inputs=False)["by_client"]


async def test_each_client_gets_its_own_token_and_free_lanes_take_turns(emulator: EmulatorServer) -> None:
    emulator.configure(credentials=CREDENTIALS)
    async with GenesysClient.from_settings(two_client_settings(emulator)) as client:
        await client.check_login()
        await execute_many(client, 40)

    seen = by_client(emulator)
    assert [lane.tokens.client_id for lane in client.lanes] == [CLIENT_ID, SECOND_ID]
    assert {c: (s["tokens"], s["requests"]) for c, s in seen.items()} == {CLIENT_ID: (1, 20), SECOND_ID: (1, 20)}


async def test_per_token_limits_hold_and_two_clients_send_twice_the_rate(emulator: EmulatorServer) -> None:
    # The emulator admits 20 requests per token in any 1 s; each lane's limiter sends 15/s (GCRA puts at most
    # 15 + 1 in any second, leaving slack for loopback jitter on a busy machine).
    emulator.configure(credentials=CREDENTIALS, rate_limit={"requests": 20, "per_seconds": 1})
    async with GenesysClient.from_settings(two_client_settings(emulator, rate_per_minute=15 * 60)) as client:
        await execute_many(client, 100)

    stats = emulator.stats(include_inputs=False)
    assert stats["rate_limited"] == 0
    assert stats["tokens_issued"] == 2
    per_client = stats["by_client"]
    assert per_client[CLIENT_ID]["requests"] + per_client[SECOND_ID]["requests"] == 100
    assert abs(per_client[CLIENT_ID]["requests"] - per_client[SECOND_ID]["requests"]) <= 2
    # Together they ran past what one token may send in a second (20), at about twice one lane's rate.
    assert 25 <= stats["peak_in_window"] <= 2 * 20, stats["peak_in_window"]


async def test_a_paused_lane_does_not_hold_up_requests_another_lane_can_send(emulator: EmulatorServer) -> None:
    emulator.configure(credentials=CREDENTIALS)
    async with GenesysClient.from_settings(two_client_settings(emulator)) as client:
        client.lanes[0].limiter.pause(60)  # as a 429 with Retry-After: 60 on the first client would
        await asyncio.wait_for(execute_many(client, 12), timeout=10)

    seen = by_client(emulator)
    assert seen[SECOND_ID]["requests"] == 12
    assert CLIENT_ID not in seen  # not even its token was fetched


async def test_a_lane_running_behind_gets_fewer_requests(emulator: EmulatorServer) -> None:
    emulator.configure(credentials=CREDENTIALS)
    settings = two_client_settings(emulator, rate_per_minute=600)  # one request per 100 ms per lane
    async with GenesysClient.from_settings(settings) as client:
        client.lanes[0].limiter.pause(0.5)  # the first lane is half a second behind
        await execute_many(client, 10)

    seen = by_client(emulator)
    assert seen[SECOND_ID]["requests"] > seen.get(CLIENT_ID, {"requests": 0})["requests"]


async def test_check_login_logs_in_every_client_and_names_the_one_refused(emulator: EmulatorServer) -> None:
    emulator.configure(credentials=CREDENTIALS[:1])
    from dataactions.errors import HealthCheckFailed

    async with GenesysClient.from_settings(two_client_settings(emulator)) as client:
        with pytest.raises(HealthCheckFailed, match=SECOND_ID) as raised:
            await client.check_login()
    assert SECOND_SECRET not in str(raised.value)
