"""GenesysClient (and the transports under it) against the emulator over loopback."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import pytest

from dataactions.audit import canonical_input
from dataactions.client import GenesysClient, _is_utf8_object
from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import customer_by_phone
from dataactions.errors import (
    AuthenticationError,
    BadRequestError,
    HealthCheckFailed,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    RemoteEndpointError,
    ResponseTimeout,
    ServiceUnavailableError,
    TransportError,
)
from dataactions.settings import Settings
from dataactions.transport import build_transport, map_transport_error
from tests.dataactions.conftest import CLIENT_SECRET, CUSTOMER_ACTION, ORDER_ACTION, phone

pytestmark = pytest.mark.anyio

MakeSettings = Callable[..., Settings]
TRANSPORTS = ["aiohttp", "httpx"]


def client_for(settings: Settings, kind: str = "aiohttp") -> GenesysClient:
    transport = build_transport(settings.pipeline.concurrency + 1, kind=kind)  # type: ignore[arg-type]
    return GenesysClient.from_settings(settings, transport=transport)


def fault(kind: str, phone_number: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "match": {"phoneNumber": phone_number}, **fields}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_execute_returns_the_action_answer(
    emulator: EmulatorServer, make_settings: MakeSettings, kind: str
) -> None:
    inputs = {"phoneNumber": phone(1)}
    async with client_for(make_settings(), kind) as client:
        answer = await client.execute(CUSTOMER_ACTION, inputs)
    assert answer.status == 200 and answer.body == customer_by_phone(inputs)
    assert answer.correlation_id and answer.elapsed_seconds > 0
    assert answer.text is not None and json.loads(answer.text) == answer.body  # the body as it came
    assert emulator.input_count(CUSTOMER_ACTION, inputs) == 1


async def test_a_given_body_is_sent_as_it_is(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    """The pipeline sends each row's canonical JSON, the bytes its audit HMAC covers, instead of encoding again."""
    sent = {"phoneNumber": phone(2)}
    async with client_for(make_settings()) as client:
        answer = await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(3)}, body=canonical_input(sent))
    assert answer.body == customer_by_phone(sent)
    assert emulator.input_count(CUSTOMER_ACTION, sent) == 1
    assert emulator.input_count(CUSTOMER_ACTION, {"phoneNumber": phone(3)}) == 0


@pytest.mark.parametrize(("encoding", "kept"), [("utf-8", True), ("utf-8-sig", False), ("utf-16-le", False),
                                                ("utf-16-be", False), ("utf-32-le", False)])
def test_only_utf8_answer_text_is_kept_as_text(encoding: str, kept: bool) -> None:
    """json.loads reads all of these; only UTF-8 without a BOM is stored as it came (results.raw_answer)."""
    content = '{"name":"Zoë"}'.encode(encoding)
    assert json.loads(content) == {"name": "Zoë"}
    assert _is_utf8_object(content) is kept


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_answer_is_freed_without_the_cyclic_garbage_collector(
    emulator: EmulatorServer, make_settings: MakeSettings, kind: str
) -> None:
    """httpx ties each answer to its stream in a reference cycle; the client breaks it once the body is read, so
    a bulk run does not leave every answer to the garbage collector (its collections took a tenth of the CPU)."""
    async with client_for(make_settings(), kind) as client:
        await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(1)})  # connections and token in place
        gc.collect()
        gc.disable()
        try:
            for n in range(50):
                await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)})
            unreachable = gc.collect()
        finally:
            gc.enable()
    assert unreachable < 50, f"{unreachable} objects of 50 answers were only reachable through reference cycles"


async def test_execute_flattened(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        answer = await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(2)}, flatten=True)
    assert "customer.name" in answer.body and "customer" not in answer.body


async def test_test_mode_reports_steps(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        answer = await client.test_action(CUSTOMER_ACTION, {"phoneNumber": phone(3)})
    assert answer.body["success"] is True and answer.body["operations"]


async def test_get_action_with_contract_and_config(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        action = await client.get_action(CUSTOMER_ACTION, include_config=True)
        bare = await client.get_action(CUSTOMER_ACTION, expand_contract=False)
    assert action["contract"]["input"]["inputSchema"]["required"] == ["phoneNumber"]
    assert action["config"]["timeoutSeconds"] == 20
    assert "contract" not in bare


async def test_list_actions_follows_pages_and_filters(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        everything = await client.list_actions(page_size=1)
        secure = await client.list_actions(secure=True)
        orders = await client.list_actions(name="order status")
        risk = await client.list_actions(category="Risk", secure=False)
    assert len(everything) == len(emulator.scenario.actions) == len({a["id"] for a in everything})
    assert all(a["secure"] for a in secure) and secure
    assert [a["id"] for a in orders] == [ORDER_ACTION]
    assert [a["category"] for a in risk] == ["Risk"]


async def test_launch_and_read_a_workflow_execution(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        launched = await client.launch_workflow("wf-enrich-customer", {"phoneNumber": phone(4)}, name="row 4")
        execution = await client.get_workflow_execution(launched.body["id"])
    assert execution.body["status"] == "RUNNING" and execution.body["name"] == "row 4"


@pytest.mark.parametrize(
    ("fault_fields", "error"),
    [
        ({"kind": "status", "status": 500}, RemoteEndpointError),
        ({"kind": "status", "status": 400}, BadRequestError),
        ({"kind": "status", "status": 404}, NotFoundError),
        ({"kind": "status", "status": 503}, ServiceUnavailableError),
        ({"kind": "status", "status": 403}, AuthenticationError),
        ({"kind": "malformed_json"}, MalformedResponseError),
    ],
)
async def test_error_answers_map_onto_the_exception_tree(
    emulator: EmulatorServer, make_settings: MakeSettings, fault_fields: dict[str, Any], error: type[Exception]
) -> None:
    emulator.configure(faults=[{"match": {"phoneNumber": phone(5)}, **fault_fields}])
    async with client_for(make_settings()) as client:
        with pytest.raises(error) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(5)})
    assert phone(5) not in str(raised.value)
    assert emulator.input_count(CUSTOMER_ACTION, {"phoneNumber": phone(5)}) == 1


async def test_a_remote_failure_carries_genesys_details(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    emulator.configure(faults=[fault("status", phone(6), status=500)])
    async with client_for(make_settings()) as client:
        with pytest.raises(RemoteEndpointError) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(6)})
    details = raised.value.details
    assert details.error_codes == ("ACTION.REMOTE_ENDPOINT",) and details.correlation_id
    assert "REST call for action execute failed" in str(raised.value)


async def test_an_input_breaking_the_contract_is_a_bad_request(
    emulator: EmulatorServer, make_settings: MakeSettings
) -> None:
    async with client_for(make_settings()) as client:
        with pytest.raises(BadRequestError, match="phoneNumber"):
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": "not a phone"})


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_connection_dropped_mid_answer_may_have_reached_the_server(
    emulator: EmulatorServer, make_settings: MakeSettings, kind: str
) -> None:
    emulator.configure(faults=[fault("drop_connection", phone(7))])
    async with client_for(make_settings(), kind) as client:
        with pytest.raises(TransportError) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(7)})
        assert (await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(8)})).status == 200
    assert type(raised.value) is TransportError and raised.value.may_have_reached_server


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_read_timeouts_are_honoured(emulator: EmulatorServer, make_settings: MakeSettings, kind: str) -> None:
    emulator.configure(latency=1000)
    async with client_for(make_settings(request_timeout_seconds=0.2), kind) as client:
        with pytest.raises(ResponseTimeout) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(9)})
    assert raised.value.may_have_reached_server


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_unreachable_host_was_never_reached(make_settings: MakeSettings, kind: str) -> None:
    settings = make_settings(api_base_url=f"http://127.0.0.1:{free_port()}")
    async with client_for(settings, kind) as client:
        with pytest.raises(TransportError) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(10)})
    assert type(raised.value) is TransportError and not raised.value.may_have_reached_server


async def test_a_revoked_token_is_renewed_once_and_every_request_replayed(
    emulator: EmulatorServer, make_settings: MakeSettings
) -> None:
    emulator.configure(latency=20)
    async with client_for(make_settings(concurrency=32)) as client:
        await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(0)})
        emulator.revoke_tokens()
        answers = await asyncio.gather(*(client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)}) for n in range(40)))
        assert client.lanes[0].tokens.tokens_fetched == 2
    assert all(a.status == 200 for a in answers)
    assert emulator.stats()["tokens_issued"] == 2


async def test_a_token_revoked_mid_request_is_replayed(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    emulator.configure(faults=[fault("revoke_token", phone(11), times=1)])
    async with client_for(make_settings()) as client:
        answer = await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(11)})
    assert answer.status == 200 and emulator.stats()["responses"]["401"] == 1


async def test_a_429_pauses_the_lane_and_raises(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    emulator.configure(faults=[fault("status", phone(12), status=429, retry_after=7, times=1)])
    async with client_for(make_settings(max_retry_after_seconds=5)) as client:
        with pytest.raises(RateLimitedError) as raised:
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(12)})
        pause = client.lanes[0].limiter.paused_until - time.monotonic()
    assert raised.value.retry_after == 7
    assert 4 < pause <= 5


async def test_concurrency_is_capped(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    emulator.configure(latency=30)
    async with client_for(make_settings(concurrency=4)) as client:
        await asyncio.gather(*(client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)}) for n in range(24)))
    assert emulator.stats()["max_in_flight"] == 4


async def test_health_check_returns_the_action_with_its_contract(
    emulator: EmulatorServer, make_settings: MakeSettings
) -> None:
    async with client_for(make_settings()) as client:
        action = await client.check_health(CUSTOMER_ACTION)
    assert action["id"] == CUSTOMER_ACTION and "inputSchema" in action["contract"]["input"]


async def test_health_check_names_an_unknown_action(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        with pytest.raises(HealthCheckFailed, match=r"unknown action.*custom_-_nope"):
            await client.check_health("custom_-_nope")


async def test_health_check_names_refused_credentials(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings(client_secret="not-the-secret")) as client:
        with pytest.raises(HealthCheckFailed, match=r"logging in.*refused credentials") as raised:
            await client.check_health(CUSTOMER_ACTION)
    assert "not-the-secret" not in str(raised.value)


async def test_check_login_alone(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    async with client_for(make_settings()) as client:
        await client.check_login()
    async with client_for(make_settings(client_secret="not-the-secret")) as client:
        with pytest.raises(HealthCheckFailed, match="refused credentials"):
            await client.check_login()
    assert emulator.stats()["requests"] == 0


async def test_health_check_names_an_unreachable_host(make_settings: MakeSettings) -> None:
    async with client_for(make_settings(api_base_url=f"http://127.0.0.1:{free_port()}")) as client:
        with pytest.raises(HealthCheckFailed, match="unreachable host"):
            await client.check_health(CUSTOMER_ACTION)


async def test_health_check_fails_fast_on_429(emulator: EmulatorServer, make_settings: MakeSettings) -> None:
    emulator.configure(rate_limit={"requests": 1, "per_seconds": 60})
    async with client_for(make_settings()) as client:
        await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(13)})
        started = time.monotonic()
        with pytest.raises(HealthCheckFailed, match="rate limited"):
            await client.check_health(CUSTOMER_ACTION)
    assert time.monotonic() - started < 10


async def test_health_check_names_a_missing_permission(make_settings: MakeSettings) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(403, json={"code": "missing.permissions", "message": "Missing integrations:action:view"})

    settings = make_settings(api_base_url="http://127.0.0.1:1")
    async with GenesysClient.from_settings(settings, transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(HealthCheckFailed, match="missing permission"):
            await client.check_health(CUSTOMER_ACTION)


def test_settings_without_credentials_are_refused(make_settings: MakeSettings) -> None:
    settings = make_settings(client_secret="")
    with pytest.raises(Exception, match="GENESYS_CLIENT_SECRET"):
        GenesysClient.from_settings(settings)


def test_secrets_stay_out_of_reprs(make_settings: MakeSettings) -> None:
    client = GenesysClient.from_settings(make_settings())
    assert CLIENT_SECRET not in repr(client.lanes) + repr(client)


def test_an_unknown_transport_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transport"):
        build_transport(4, kind="curl")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected", "reached"),
    [
        (httpx.ConnectError("refused"), TransportError, False),
        (httpx.ConnectTimeout("slow connect"), TransportError, False),
        (httpx.PoolTimeout("no connection free"), TransportError, False),
        (httpx.ReadTimeout("slow answer"), ResponseTimeout, True),
        (httpx.WriteTimeout("slow upload"), ResponseTimeout, True),
        (httpx.RemoteProtocolError("peer closed"), TransportError, True),
        (httpx.ReadError("reset"), TransportError, True),
        (aiohttp.ServerDisconnectedError(), TransportError, True),
        (aiohttp.ClientPayloadError("cut short"), TransportError, True),
        (aiohttp.SocketTimeoutError("slow"), ResponseTimeout, True),
        (aiohttp.ConnectionTimeoutError("slow connect"), TransportError, False),
        (TimeoutError(), ResponseTimeout, True),
    ],
)
def test_transport_failures_map_by_whether_the_request_left(exc: Exception, expected: type, reached: bool) -> None:
    mapped = map_transport_error(exc, "POST /x")
    assert type(mapped) is expected and mapped.may_have_reached_server is reached


def test_the_aiohttp_cause_decides_over_its_coarse_httpx_mapping() -> None:
    wrapped = httpx.ConnectTimeout("mapped by httpx-aiohttp")
    wrapped.__cause__ = aiohttp.ServerDisconnectedError()
    mapped = map_transport_error(wrapped, "POST /x")
    assert type(mapped) is TransportError and mapped.may_have_reached_server
