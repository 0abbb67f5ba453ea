"""Emulator fixtures: one emulator thread per session, restored to a quiet baseline before each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from dataactions.emulator import EmulatorServer, Scenario
from tests.dataactions.emulator.support import baseline, bearer, fetch_token, quiet_scenario


@pytest.fixture(scope="session")
def emu_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(quiet_scenario()) as server:
        yield server


@pytest.fixture
def emu(emu_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session emulator with zeroed counters; its configuration is restored afterwards."""
    emu_server.reset()
    yield emu_server
    emu_server.configure(**baseline())
    emu_server.reset()


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, trust_env=False, verify=False, timeout=10) as client:
        yield client


@pytest.fixture
def token(http: httpx.Client) -> str:
    return fetch_token(http)


@pytest.fixture
def api(emu: EmulatorServer, token: str) -> Iterator[httpx.Client]:
    """An httpx client that carries a fresh bearer token."""
    with httpx.Client(
        base_url=emu.base_url, headers=bearer(token), trust_env=False, verify=False, timeout=10
    ) as client:
        yield client


@pytest.fixture
def start_emulator() -> Iterator[Callable[[Scenario], EmulatorServer]]:
    """Start extra emulators with their own scenario; all stop at the end of the test."""
    with ExitStack() as stack:
        yield lambda scenario: stack.enter_context(EmulatorServer(scenario))
