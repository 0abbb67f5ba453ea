"""Fixtures for the library's tests: the emulator over loopback, settings that point at it, virtual clocks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from dataactions.emulator import EmulatorServer, Scenario
from dataactions.settings import Settings, load_settings
from dataactions.telemetry import Metrics

_DEFAULT = Scenario.default()
CUSTOMER_ACTION = next(a.id for a in _DEFAULT.actions if a.output == "customer_by_phone")
ORDER_ACTION = next(a.id for a in _DEFAULT.actions if a.output == "order_status")
WORKFLOW = "wf-enrich-customer"
FAILING_WORKFLOW_INPUT = {"phoneNumber": "+15550199999"}
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"

_BASELINE = {
    **{key: _DEFAULT.model_dump(mode="json")[key] for key in (
        "credentials", "token_lifetime_seconds", "rate_limit", "concurrent_executions_max", "workflows",
    )},
    "latency": 0,
    "faults": [],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Scenario.default(), port=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session's emulator with the default catalog, no latency, no faults and zeroed counters.

    Executions an earlier test abandoned (client-side timeouts) are let finish first, so that they do not
    show in this test's counters.
    """
    emulator_server.configure(**_BASELINE)
    emulator_server.revoke_tokens()
    deadline = time.monotonic() + 10
    while emulator_server.stats(include_inputs=False)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def make_settings(emulator: EmulatorServer) -> Callable[..., Settings]:
    """Settings for the emulator; keyword arguments override pipeline knobs (the client-side rate limit is off)."""

    def make(*, client_secret: str = CLIENT_SECRET, api_base_url: str | None = None, **pipeline: Any) -> Settings:
        genesys: dict[str, object] = {"client_id": CLIENT_ID, "client_secret": client_secret,
                   "api_base_url": api_base_url or emulator.base_url}
        return load_settings(genesys=genesys, pipeline={"rate_per_minute": 0, **pipeline})

    return make


def in_memory_metrics() -> tuple[Metrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return Metrics(MeterProvider(metric_readers=[reader]).get_meter("test")), reader


def collected(reader: InMemoryMetricReader) -> dict[str, Any]:
    """Metric name → metric, from what `reader` holds now."""
    data = reader.get_metrics_data()
    assert data is not None
    return {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def points(metric: Any) -> dict[tuple[tuple[str, Any], ...], Any]:
    """Attributes (sorted pairs) → data point."""
    return {tuple(sorted(p.attributes.items())): p for p in metric.data.data_points}


def phone(n: int) -> str:
    return f"+1555{n:07d}"


class FakeClock:
    """Time that only moves when the one flow of control under test sleeps: `sleep` jumps it forward."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class VirtualClock:
    """Time for many concurrent sleepers: `run` drives them, jumping to the earliest timer whenever all wait."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), wake))
        await wake

    async def run(self, *awaitables: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(a) for a in awaitables]
        while not all(task.done() for task in tasks):
            await _settle()
            if self._timers and not all(task.done() for task in tasks):
                when, _, wake = heapq.heappop(self._timers)
                self.now = max(self.now, when)
                wake.set_result(None)
        return [task.result() for task in tasks]


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)
