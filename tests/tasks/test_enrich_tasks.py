"""The batch task's retry condition, on the states Prefect really builds from an exception."""

from __future__ import annotations

import asyncio

import pytest
from prefect.states import exception_to_failed_state

from dataactions.errors import CircuitOpenError, ErrorDetails, ServiceUnavailableError, TransportError
from tasks.enrich import enrich_batches_task, retry_only_transient


async def condition_in_the_task_engine(error: BaseException) -> bool:
    """Prefect calls the condition inside the async task's running event loop, where it must not return a coroutine."""
    return retry_only_transient(enrich_batches_task, None, await exception_to_failed_state(error))  # type: ignore[arg-type]


@pytest.mark.parametrize("error, retried", [
    (ServiceUnavailableError(ErrorDetails(503)), True),
    (TransportError("connection reset"), True),
    (CircuitOpenError("48 of the last 50 calls failed"), False),
    (ValueError("a bug"), False),
])
def test_a_batch_is_retried_only_for_a_transient_failure(error: BaseException, retried: bool) -> None:
    assert asyncio.run(condition_in_the_task_engine(error)) is retried
