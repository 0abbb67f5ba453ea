"""Per-row invocation for the batch pipeline: retries, the circuit breaker, metrics, one `Invocation` per row.

    invoker = Invoker.from_settings(client, settings.pipeline, metrics)
    row = await invoker.execute(action_id, {"phoneNumber": "+353..."})      # never raises for the row
    row = await invoker.run_workflow("wf-enrich-customer", {"phoneNumber": "+353..."})

Every attempt passes the breaker first and is recorded in it; `CircuitOpenError` is the one failure that
propagates (it stops the run). Any other failure becomes `Invocation(status="failed", ...)` whose message names
what failed and never carries the row's input values.

Workflows: the launch (a POST) is retried as the policy says; the execution is then polled, first after
`poll_initial_seconds`, the wait doubling up to `poll_max_seconds`, until it ends or `workflow_deadline_seconds`
after the launch. A poll is a GET, so transient poll failures are always retried. `attempts` counts the
launch attempts (the ones that could start the workflow twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any, Literal

from dataactions.breaker import CircuitBreaker
from dataactions.client import ApiResponse, GenesysClient
from dataactions.errors import (
    ApiError,
    CircuitOpenError,
    DataActionsError,
    MalformedResponseError,
    RateBudgetSpent,
    RateLimitedError,
    WorkflowDeadlineExceeded,
    WorkflowError,
)
from dataactions.retry import AttemptObserver, RetryPolicy, attempts_of, call_with_retries, failure_reason
from dataactions.settings import PipelineSettings
from dataactions.telemetry import Metrics

__all__ = ["Invocation", "Invoker"]

_FAILED_STATUSES = frozenset({"FAILED", "ERROR", "TERMINATED"})
_MIN_REDACTED_LENGTH = 4


@dataclass(slots=True)
class Invocation:
    """The outcome of one row."""

    status: Literal["succeeded", "failed"]
    body: dict[str, Any] | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0
    correlation_id: str | None = None
    rate_limited: int = 0
    """429 answers met on the way (each one was waited out and retried, or ended the row)."""
    text: bytes | None = None
    """`body` as it came on the wire (UTF-8 JSON), when the answer was all of it (executes); else None."""


class Invoker:
    """Runs rows through a `GenesysClient` with retries, a circuit breaker and metrics."""

    def __init__(
        self,
        client: GenesysClient,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        metrics: Metrics,
        *,
        poll_initial_seconds: float = 0.5,
        poll_max_seconds: float = 15.0,
        workflow_deadline_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.breaker = breaker
        self._client = client
        self._policy = policy
        self._poll_policy = dataclasses.replace(policy, retry_unsafe=True)
        self.metrics = metrics
        self._poll_initial = poll_initial_seconds
        self._poll_max = poll_max_seconds
        self._deadline_seconds = workflow_deadline_seconds
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls, client: GenesysClient, pipeline: PipelineSettings, metrics: Metrics | None = None
    ) -> Invoker:
        return cls(
            client,
            RetryPolicy.from_settings(pipeline),
            CircuitBreaker(pipeline.breaker_window, pipeline.breaker_failure_ratio),
            metrics or Metrics.noop(),
            poll_initial_seconds=pipeline.workflow_poll_initial_seconds,
            poll_max_seconds=pipeline.workflow_poll_max_seconds,
            workflow_deadline_seconds=pipeline.workflow_deadline_seconds,
        )

    async def execute(
        self, action_id: str, inputs: Mapping[str, Any], *, flatten: bool = False, body: bytes | None = None
    ) -> Invocation:
        """Execute the action for one row, retrying as the policy says (`body`: see `GenesysClient.execute`)."""
        started = perf_counter()
        row = _RowAttempts(self)
        try:
            response, attempts = await self._retrying(
                partial(self._client.execute, action_id, inputs, flatten=flatten, body=body), self._policy, row)
        except (CircuitOpenError, RateBudgetSpent):
            raise
        except DataActionsError as exc:
            return self._failed(action_id, exc, attempts_of(exc), inputs, started, row.rate_limited)
        return self._succeeded(action_id, response, response.body, attempts, started, row.rate_limited,
                               response.text)

    async def run_workflow(self, flow_id: str, inputs: Mapping[str, Any], *, name: str | None = None) -> Invocation:
        """Launch a workflow for one row and poll it to its end (or its deadline)."""
        started = perf_counter()
        deadline = self._clock() + self._deadline_seconds
        attempts = 0
        row = _RowAttempts(self)
        try:
            launched, attempts = await self._retrying(
                partial(self._client.launch_workflow, flow_id, inputs, name), self._policy, row)
            final = await self._await_end(_execution_id(launched), deadline, row)
        except (CircuitOpenError, RateBudgetSpent):
            raise
        except DataActionsError as exc:
            return self._failed(flow_id, exc, attempts or attempts_of(exc), inputs, started, row.rate_limited)
        output = final.body.get("outputData")
        return self._succeeded(flow_id, final, output if isinstance(output, dict) else {}, attempts, started,
                               row.rate_limited)

    async def _await_end(self, execution_id: str, deadline: float, row: _RowAttempts) -> ApiResponse:
        delay = self._poll_initial
        while True:
            await self._sleep(max(0.0, min(delay, deadline - self._clock())))
            response, _ = await self._retrying(partial(self._poll, execution_id), self._poll_policy, row)
            status = response.body["status"]
            if status == "COMPLETED":
                return response
            if status in _FAILED_STATUSES:
                raise WorkflowError(execution_id, status, _flow_error(response.body))
            if self._clock() >= deadline:
                raise WorkflowDeadlineExceeded(execution_id, status, f"{self._deadline_seconds:g} s after launch")
            delay = min(delay * 2, self._poll_max)

    async def _poll(self, execution_id: str) -> ApiResponse:
        response = await self._client.get_workflow_execution(execution_id)
        if not isinstance(response.body.get("status"), str):
            raise MalformedResponseError(f"workflow execution {execution_id} was reported without a status")
        return response

    def _retrying(
        self, call: Callable[[], Awaitable[ApiResponse]], policy: RetryPolicy, row: _RowAttempts
    ) -> Awaitable[tuple[ApiResponse, int]]:
        return call_with_retries(call, policy, observer=row, sleep=self._sleep, rng=self._rng)

    def _succeeded(
        self, action: str, response: ApiResponse, body: dict[str, Any], attempts: int, started: float,
        rate_limited: int = 0, text: bytes | None = None,
    ) -> Invocation:
        seconds = perf_counter() - started
        self.metrics.record_invocation(action, "succeeded", seconds)
        return Invocation(
            "succeeded", body, response.status, None, None, attempts, seconds * 1000.0, response.correlation_id,
            rate_limited, text,
        )

    def _failed(
        self, action: str, exc: DataActionsError, attempts: int, inputs: Mapping[str, Any], started: float,
        rate_limited: int = 0,
    ) -> Invocation:
        seconds = perf_counter() - started
        self.metrics.record_invocation(action, "failed", seconds, failure_reason(exc))
        api = exc if isinstance(exc, ApiError) else None
        return Invocation(
            "failed",
            None,
            api.status if api else None,
            str(exc.code),
            _redacted(str(exc), inputs),
            attempts,
            seconds * 1000.0,
            api.correlation_id if api else None,
            rate_limited,
        )


class _RowAttempts(AttemptObserver):
    """One row's attempts: each passes the circuit breaker first and is recorded in it, 429s are counted."""

    __slots__ = ("_invoker", "rate_limited")

    def __init__(self, invoker: Invoker) -> None:
        self._invoker = invoker
        self.rate_limited = 0

    def before_attempt(self) -> None:
        self._invoker.breaker.check()

    def after_attempt(self, exc: BaseException | None) -> None:
        if isinstance(exc, RateBudgetSpent) or not (exc is None or isinstance(exc, DataActionsError)):
            return  # nothing was sent (a spent rate budget), or a bug: the breaker judges only the remote's answers
        self._invoker.breaker.record(exc)
        if isinstance(exc, RateLimitedError):
            self.rate_limited += 1
            self._invoker.metrics.record_rate_limited()

    def on_retry(self, exc: BaseException, attempt: int, delay: float) -> None:
        self._invoker.metrics.record_retry(failure_reason(exc))


def _execution_id(launched: ApiResponse) -> str:
    execution_id = launched.body.get("id")
    if not isinstance(execution_id, str) or not execution_id:
        raise MalformedResponseError("the workflow launch was answered without an execution id")
    return execution_id


def _flow_error(body: dict[str, Any]) -> str:
    info = body.get("flowErrorInfo")
    if isinstance(info, dict) and (info.get("message") or info.get("code")):
        return ": ".join(str(info[k]) for k in ("code", "message") if info.get(k))
    return str(body.get("completionReason") or "")


def _redacted(message: str, inputs: Mapping[str, Any]) -> str:
    """`message` with every input value of 4+ characters masked (Genesys may echo a value back)."""
    for value in inputs.values():
        if isinstance(value, bool) or value is None:
            continue
        text = str(value)
        if len(text) >= _MIN_REDACTED_LENGTH and text in message:
            message = message.replace(text, "***")
    return message
