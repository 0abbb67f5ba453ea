"""TokenProvider against the emulator's token endpoint (and a MockTransport for answers the emulator never gives)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from dataactions.auth import TokenCache, TokenProvider
from dataactions.client import GenesysClient
from dataactions.emulator import EmulatorServer
from dataactions.errors import (
    AuthenticationError,
    MalformedResponseError,
    ServiceUnavailableError,
    TransportError,
)
from dataactions.settings import Settings
from tests.dataactions.conftest import CLIENT_ID, CLIENT_SECRET, CUSTOMER_ACTION, FakeClock, phone

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider(
    http: httpx.AsyncClient, url: str, *, secret: str = CLIENT_SECRET, clock: Callable[[], float] = time.monotonic,
    margin: float = 300,
) -> TokenProvider:
    return TokenProvider(http, url, CLIENT_ID, SecretStr(secret), renew_margin_seconds=margin, clock=clock)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fifty_concurrent_callers_share_one_token(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    tokens = provider(http, emulator.base_url)
    got = await asyncio.gather(*(tokens.token() for _ in range(50)))
    assert len(set(got)) == 1
    assert await tokens.token() == got[0]
    assert tokens.tokens_fetched == 1 == emulator.stats()["tokens_issued"]


async def test_renewed_before_expiry(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    emulator.configure(token_lifetime_seconds=100)
    clock = FakeClock(now=0.0)
    tokens = provider(http, emulator.base_url, clock=clock)
    assert tokens.current() is None  # nothing fetched yet
    first = await tokens.token()
    clock.now = 89.0
    assert await tokens.token() == first == tokens.current()
    clock.now = 91.0
    assert tokens.current() is None  # due for renewal: only token() renews it
    second = await tokens.token()
    assert second != first and tokens.tokens_fetched == 2 == emulator.stats()["tokens_issued"]


async def test_a_short_lived_token_is_replaced_before_the_api_refuses_it(
    emulator: EmulatorServer, make_settings: Callable[..., Settings]
) -> None:
    emulator.configure(token_lifetime_seconds=2)
    async with GenesysClient.from_settings(make_settings()) as client:
        tokens = client.lanes[0].tokens
        for n in itertools.count():
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)})
            if tokens.tokens_fetched >= 2 and n > 20:
                break
            await asyncio.sleep(0.1)
    stats = emulator.stats()
    assert "401" not in stats["responses"]
    assert stats["tokens_issued"] == tokens.tokens_fetched


async def test_fifty_401s_cause_one_renewal(emulator: EmulatorServer, http: httpx.AsyncClient) -> None:
    tokens = provider(http, emulator.base_url)
    stale = await tokens.token()
    fresh = await asyncio.gather(*(tokens.renew(stale) for _ in range(50)))
    assert len(set(fresh)) == 1 and fresh[0] != stale
    assert await tokens.renew(stale) == fresh[0]
    assert tokens.tokens_fetched == 2 == emulator.stats()["tokens_issued"]


async def test_refused_credentials_are_terminal_and_never_show_the_secret(
    emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    tokens = provider(http, emulator.base_url, secret="wrong-secret-value")
    with pytest.raises(AuthenticationError) as raised:
        await tokens.token()
    message = str(raised.value)
    assert CLIENT_ID in message and "GENESYS_CLIENT_SECRET" in message and "HTTP 401" in message
    assert "wrong-secret-value" not in message + repr(raised.value) + repr(tokens)
    assert not raised.value.transient


async def test_an_unreachable_login_host_is_transient_and_never_reached(http: httpx.AsyncClient) -> None:
    tokens = provider(http, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransportError) as raised:
        await tokens.token()
    assert raised.value.transient and not raised.value.may_have_reached_server


def mock_login(*answers: httpx.Response) -> httpx.AsyncClient:
    """A token endpoint answering these in turn (the emulator's never fails with 5xx)."""
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].startswith("Basic ")
        assert request.content == b"grant_type=client_credentials"
        return queue.pop(0)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def token_answer(token: str, lifetime: int = 100) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": lifetime})


async def test_a_failing_login_service_is_transient() -> None:
    async with mock_login(httpx.Response(503, json={"message": "down"})) as http:
        with pytest.raises(ServiceUnavailableError) as raised:
            await provider(http, "https://login.example.test").token()
    assert raised.value.transient and "login service" in str(raised.value)


async def test_an_answer_without_a_token_is_malformed() -> None:
    async with mock_login(httpx.Response(200, json={"token_type": "bearer"})) as http:
        with pytest.raises(MalformedResponseError):
            await provider(http, "https://login.example.test").token()


async def test_a_secret_echoed_by_the_login_service_is_masked() -> None:
    echo = httpx.Response(400, json={"error": "invalid_client", "description": f"bad secret {CLIENT_SECRET}"})
    async with mock_login(echo) as http:
        with pytest.raises(AuthenticationError) as raised:
            await provider(http, "https://login.example.test").token()
    assert CLIENT_SECRET not in str(raised.value)


async def test_a_failed_early_renewal_keeps_the_valid_token_until_it_expires() -> None:
    clock = FakeClock(now=0.0)
    failure = httpx.Response(503, json={"message": "down"})
    async with mock_login(token_answer("t1"), failure, failure, token_answer("t2")) as http:
        tokens = provider(http, "https://login.example.test", clock=clock)
        assert await tokens.token() == "t1"
        clock.now = 95.0
        assert await tokens.token() == "t1"
        assert await tokens.token() == "t1"
        clock.now = 100.0
        with pytest.raises(ServiceUnavailableError):
            await tokens.token()
        assert await tokens.token() == "t2"


def cached_provider(http: httpx.AsyncClient, url: str, cache: TokenCache) -> TokenProvider:
    return TokenProvider(http, url, CLIENT_ID, SecretStr(CLIENT_SECRET), cache=cache)


async def test_providers_sharing_a_cache_log_in_once_across_event_loops(emulator: EmulatorServer) -> None:
    cache = TokenCache()

    async def one_task() -> str:  # as a Dask worker runs each task: a fresh loop, a fresh client
        async with httpx.AsyncClient() as http:
            return await cached_provider(http, emulator.base_url, cache).token()

    first = await asyncio.to_thread(asyncio.run, one_task())
    second = await asyncio.to_thread(asyncio.run, one_task())
    assert first == second and emulator.stats()["tokens_issued"] == 1
    assert CLIENT_SECRET not in repr(cache) and first not in repr(cache)


async def test_a_refused_cached_token_is_replaced_for_every_provider(emulator: EmulatorServer,
                                                                     http: httpx.AsyncClient) -> None:
    cache = TokenCache()
    one, other = (cached_provider(http, emulator.base_url, cache) for _ in range(2))
    stale = await one.token()
    emulator.revoke_tokens()

    fresh = await one.renew(stale)
    assert fresh != stale
    assert await other.token() == fresh  # took the replacement from the cache: no second login
    assert await other.renew(stale) == fresh
    assert emulator.stats()["tokens_issued"] == 2


async def test_a_shared_cache_needs_the_monotonic_clock(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="monotonic"):
        TokenProvider(http, "https://login.example.test", CLIENT_ID, SecretStr(CLIENT_SECRET), clock=FakeClock(),
                      cache=TokenCache())
