"""Invoker against the emulator: retries as the policy says, the breaker, metrics, workflows polled to the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dataactions.breaker import CircuitBreaker
from dataactions.client import GenesysClient
from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import customer_by_phone, enrich_customer
from dataactions.errors import CircuitOpenError
from dataactions.invoke import Invocation, Invoker
from dataactions.retry import RetryPolicy
from dataactions.settings import Settings
from dataactions.telemetry import Metrics
from tests.dataactions.conftest import (
    CUSTOMER_ACTION,
    FAILING_WORKFLOW_INPUT,
    WORKFLOW,
    FakeClock,
    collected,
    in_memory_metrics,
    phone,
    points,
)

pytestmark = pytest.mark.anyio

QUICK = RetryPolicy(backoff_base_seconds=0.001, backoff_max_seconds=0.01)


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[GenesysClient]:
    async with GenesysClient.from_settings(make_settings(concurrency=16)) as client:
        yield client


def invoker(client: GenesysClient, policy: RetryPolicy = QUICK, **options: Any) -> Invoker:
    breaker = options.pop("breaker", CircuitBreaker(window=50, failure_ratio=0.9))
    return Invoker(client, policy, breaker, options.pop("metrics", Metrics.noop()), **options)


def only_for(number: int, **fault: Any) -> dict[str, Any]:
    return {"match": {"phoneNumber": phone(number)}, **fault}


def executions(emulator: EmulatorServer, number: int) -> int:
    return emulator.input_count(CUSTOMER_ACTION, {"phoneNumber": phone(number)})


async def test_a_row_that_succeeds(emulator: EmulatorServer, client: GenesysClient) -> None:
    row = await invoker(client).execute(CUSTOMER_ACTION, {"phoneNumber": phone(1)})
    assert row.status == "succeeded" and row.attempts == 1 and row.http_status == 200
    assert row.body == customer_by_phone({"phoneNumber": phone(1)})
    assert row.correlation_id and row.duration_ms > 0 and row.error_code is None


@pytest.mark.parametrize(
    ("fault", "http_status", "code"),
    [
        ({"kind": "status", "status": 400}, 400, "bad.request"),
        ({"kind": "status", "status": 404}, 404, "not.found"),
        ({"kind": "status", "status": 500}, 500, "internal.server.error"),
    ],
)
async def test_terminal_errors_are_not_retried(
    emulator: EmulatorServer, client: GenesysClient, fault: dict[str, Any], http_status: int, code: str
) -> None:
    emulator.configure(faults=[only_for(2, **fault)])
    row = await invoker(client).execute(CUSTOMER_ACTION, {"phoneNumber": phone(2)})
    assert (row.status, row.http_status, row.error_code, row.attempts) == ("failed", http_status, code, 1)
    assert row.correlation_id and row.body is None
    assert executions(emulator, 2) == 1


async def test_a_transient_503_succeeds_on_the_third_attempt(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(faults=[only_for(3, kind="status", status=503, times=2)])
    row = await invoker(client).execute(CUSTOMER_ACTION, {"phoneNumber": phone(3)})
    assert row.status == "succeeded" and row.attempts == 3
    assert executions(emulator, 3) == 3


async def test_retries_run_out(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(faults=[only_for(4, kind="status", status=503)])
    row = await invoker(client, RetryPolicy(max_attempts=3, backoff_base_seconds=0.001)).execute(
        CUSTOMER_ACTION, {"phoneNumber": phone(4)}
    )
    assert (row.status, row.http_status, row.attempts) == ("failed", 503, 3)
    assert executions(emulator, 4) == 3


async def test_unsafe_retries_can_be_turned_off(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(faults=[only_for(5, kind="status", status=503, times=1)])
    safe = RetryPolicy(retry_unsafe=False, backoff_base_seconds=0.001)
    row = await invoker(client, safe).execute(CUSTOMER_ACTION, {"phoneNumber": phone(5)})
    assert (row.status, row.attempts) == ("failed", 1)
    assert executions(emulator, 5) == 1


@pytest.mark.parametrize("kind", ["malformed_json", "drop_connection"])
async def test_broken_answers_are_retried(emulator: EmulatorServer, client: GenesysClient, kind: str) -> None:
    emulator.configure(faults=[only_for(6, kind=kind, times=1)])
    row = await invoker(client).execute(CUSTOMER_ACTION, {"phoneNumber": phone(6)})
    assert row.status == "succeeded" and row.attempts == 2
    assert executions(emulator, 6) == 2


async def test_a_429_storm_waits_out_every_retry_after(
    emulator: EmulatorServer, make_settings: Callable[..., Settings]
) -> None:
    emulator.configure(rate_limit={"requests": 15, "per_seconds": 1})
    async with GenesysClient.from_settings(make_settings(concurrency=16, rate_per_minute=0)) as client:
        runner = invoker(client, RetryPolicy(max_attempts=10))
        rows = await asyncio.gather(*(runner.execute(CUSTOMER_ACTION, {"phoneNumber": phone(n)}) for n in range(40)))
    stats = emulator.stats()
    assert all(row.status == "succeeded" for row in rows)
    assert stats["rate_limited"] > 0 and stats["requests_before_retry_after"] == 0
    assert sum(stats["executions"].values()) == 40


async def test_an_open_breaker_stops_the_run(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(faults=[{"kind": "status", "status": 503}])
    runner = invoker(client, RetryPolicy(max_attempts=3, backoff_base_seconds=0.001),
                     breaker=CircuitBreaker(window=5, failure_ratio=1.0))
    first = await runner.execute(CUSTOMER_ACTION, {"phoneNumber": phone(7)})
    with pytest.raises(CircuitOpenError, match=r"5 of the last 5 calls failed \(5x http.503\)"):
        await runner.execute(CUSTOMER_ACTION, {"phoneNumber": phone(8)})
    assert first.status == "failed"
    assert sum(emulator.stats()["executions"].values()) == 5


async def test_client_errors_never_open_the_breaker(emulator: EmulatorServer, client: GenesysClient) -> None:
    runner = invoker(client, breaker=CircuitBreaker(window=3, failure_ratio=0.5))
    rows = [await runner.execute(CUSTOMER_ACTION, {"phoneNumber": "bad"}) for _ in range(6)]
    assert {row.error_code for row in rows} == {"bad.request"} and not runner.breaker.is_open


async def test_error_messages_never_carry_input_values(emulator: EmulatorServer, client: GenesysClient) -> None:
    echo = f"no customer with phone {phone(9)}"
    emulator.configure(faults=[only_for(9, kind="status", status=400, message=echo)])
    row = await invoker(client).execute(CUSTOMER_ACTION, {"phoneNumber": phone(9)})
    assert row.status == "failed" and row.error_message
    assert phone(9) not in row.error_message and "no customer with phone ***" in row.error_message


async def test_every_attempt_is_measured(emulator: EmulatorServer, client: GenesysClient) -> None:
    metrics, reader = in_memory_metrics()
    emulator.configure(faults=[only_for(10, kind="status", status=503, times=2),
                               only_for(11, kind="status", status=429, retry_after=0, times=1)])
    runner = invoker(client, metrics=metrics)
    rows = [await runner.execute(CUSTOMER_ACTION, {"phoneNumber": phone(number)}) for number in (10, 11)]
    assert [row.rate_limited for row in rows] == [0, 1]
    found = collected(reader)
    retries = {key: p.value for key, p in points(found["dataactions.retries"]).items()}
    assert retries == {(("error.type", "http.503"),): 2, (("error.type", "http.429"),): 1}
    assert points(found["dataactions.rate_limited.responses"])[()].value == 1
    invocations = {key: p.value for key, p in points(found["dataactions.invocations"]).items()}
    assert invocations == {(("dataactions.action.id", CUSTOMER_ACTION), ("dataactions.outcome", "succeeded")): 2}


async def test_a_workflow_polled_to_completion(emulator: EmulatorServer, client: GenesysClient) -> None:
    inputs = {"phoneNumber": phone(12)}
    row = await invoker(client, poll_initial_seconds=0.05, poll_max_seconds=0.2).run_workflow(WORKFLOW, inputs)
    assert row.status == "succeeded" and row.attempts == 1
    assert row.body == enrich_customer(inputs)
    assert emulator.stats()["workflow_polls"] >= 2


async def test_a_failed_workflow(emulator: EmulatorServer, client: GenesysClient) -> None:
    row = await invoker(client, poll_initial_seconds=0.05, poll_max_seconds=0.2).run_workflow(
        WORKFLOW, FAILING_WORKFLOW_INPUT
    )
    assert (row.status, row.error_code) == ("failed", "workflow.failed")
    assert row.error_message and "ended FAILED" in row.error_message and "flow.execution.failed" in row.error_message


async def test_a_workflow_past_its_deadline(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(workflows=[{"flow_id": WORKFLOW, "name": "Never ends", "outcome": "RUNNING"}])
    clock = FakeClock()
    runner = invoker(client, poll_initial_seconds=1, poll_max_seconds=4, workflow_deadline_seconds=10,
                     clock=clock, sleep=clock.sleep)
    row = await runner.run_workflow(WORKFLOW, {"phoneNumber": phone(13)})
    assert (row.status, row.error_code) == ("failed", "workflow.deadline")
    assert row.error_message and "still RUNNING" in row.error_message
    assert clock.sleeps == [1, 2, 4, 3]
    assert emulator.stats()["workflow_polls"] == 4


async def test_transient_poll_failures_are_retried(emulator: EmulatorServer, client: GenesysClient) -> None:
    emulator.configure(rate_limit={"requests": 2, "per_seconds": 1},
                       workflows=[{"flow_id": WORKFLOW, "name": "Quick", "duration_seconds": 0.2, "output": "echo"}])
    runner = invoker(client, RetryPolicy(retry_unsafe=False), poll_initial_seconds=0.05, poll_max_seconds=0.1)
    row = await runner.run_workflow(WORKFLOW, {"phoneNumber": phone(14)})
    assert row.status == "succeeded" and row.body == {"phoneNumber": phone(14)}
    assert emulator.stats()["rate_limited"] >= 1


async def test_an_unknown_workflow_fails_at_launch(emulator: EmulatorServer, client: GenesysClient) -> None:
    row = await invoker(client).run_workflow("wf-nope", {"phoneNumber": phone(15)})
    assert (row.status, row.http_status, row.attempts) == ("failed", 404, 1)


def test_invocations_are_slotted() -> None:
    row = Invocation("succeeded", {"a": 1})
    with pytest.raises(AttributeError):
        row.extra = 1  # type: ignore[attr-defined]
