"""When to try a request again, and how long to wait first (the policy Genesys's Java SDK encodes).

| failure                                          | retried when                                    | wait        |
|--------------------------------------------------|-------------------------------------------------|-------------|
| 429                                              | 429 is in `retry_statuses`                      | Retry-After |
| another 4xx                                      | it is in `retry_statuses` (by default none is)  | backoff     |
| a 5xx (default set: 502, 503, 504)               | it is in `retry_statuses` and `retry_unsafe`    | backoff     |
| no connection could be made                      | always                                          | backoff     |
| dropped mid-request, timed out, malformed answer | `retry_unsafe` (the request reached the server) | backoff     |
| anything else, or not a `DataActionsError`       | never                                           |             |

`retry_unsafe` is the price of retrying a POST that may already have run the action. Retry-After is capped at
`max_retry_after_seconds` (3 s when a 429 has none). Backoff is exponential with full jitter: uniform in
`[0, min(backoff_max, backoff_base * 2 ** (attempt - 1))]`.
No failure is retried once `max_attempts` attempts have been made. `call_with_retries` gives up by raising the
last exception with an `attempts` attribute set on it (read it with `attempts_of`); an `AttemptObserver` sees
every attempt and every retry on the way.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dataactions.errors import (
    ApiError,
    DataActionsError,
    MalformedResponseError,
    RateLimitedError,
    TransportError,
)
from dataactions.settings import PipelineSettings

__all__ = [
    "DEFAULT_RETRY_AFTER_SECONDS",
    "AttemptObserver",
    "RetryPolicy",
    "attempts_of",
    "call_with_retries",
    "failure_reason",
]

T = TypeVar("T")

DEFAULT_RETRY_AFTER_SECONDS = 3.0
"""The wait after a 429 without a Retry-After header (the Java SDK's value)."""

_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures to retry, how often, and how long to wait between attempts."""

    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    retry_unsafe: bool = True
    max_attempts: int = 5
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0

    @classmethod
    def from_settings(cls, pipeline: PipelineSettings) -> RetryPolicy:
        return cls(
            retry_statuses=frozenset(pipeline.retry_statuses),
            retry_unsafe=pipeline.retry_unsafe,
            max_attempts=pipeline.max_attempts,
            backoff_base_seconds=pipeline.backoff_base_seconds,
            backoff_max_seconds=pipeline.backoff_max_seconds,
            max_retry_after_seconds=pipeline.max_retry_after_seconds,
        )

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to make attempt `attempt + 1` after attempt `attempt` (1-based) failed with `exc`."""
        if attempt >= self.max_attempts or not isinstance(exc, DataActionsError):
            return False
        if isinstance(exc, ApiError):
            return exc.status in self.retry_statuses and (exc.status < 500 or self.retry_unsafe)
        if isinstance(exc, TransportError):
            return self.retry_unsafe or not exc.may_have_reached_server
        if isinstance(exc, MalformedResponseError):
            return self.retry_unsafe
        return False

    def delay(self, exc: BaseException, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after attempt `attempt` failed with `exc`."""
        if isinstance(exc, RateLimitedError):
            retry_after = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS
            return min(retry_after, self.max_retry_after_seconds)
        ceiling = self.backoff_base_seconds * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT)
        return rng.uniform(0.0, min(ceiling, self.backoff_max_seconds))


class AttemptObserver:
    """What `call_with_retries` tells about each attempt; the methods do nothing until overridden."""

    __slots__ = ()

    def before_attempt(self) -> None:
        """Called before each attempt; raising here stops the call before anything is sent."""

    def after_attempt(self, exc: BaseException | None) -> None:
        """Called after each attempt with None (it answered) or the exception it failed with."""

    def on_retry(self, exc: BaseException, attempt: int, delay: float) -> None:
        """Called when attempt `attempt` failed with `exc` and the next one follows after `delay` seconds."""


_NOT_OBSERVED = AttemptObserver()


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    observer: AttemptObserver = _NOT_OBSERVED,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random = random.Random(),  # noqa: B008 - one shared generator is the intent
) -> tuple[T, int]:
    """`(await fn(), attempts)`, retrying failures as `policy` says, each attempt and retry told to `observer`.

    On giving up, the last exception is raised with `exc.attempts` set to the number of attempts made. The
    attempt is awaited right here, with no wrapper around it: every coroutine between a row and its HTTP call is
    passed through again each time the call resumes, which cost the pipeline 1–2 µs a row per level (interleaved
    runs, benchmarks.layers).
    """
    attempt = 1
    while True:
        observer.before_attempt()
        try:
            answer = await fn()
        except Exception as exc:
            observer.after_attempt(exc)
            if not policy.should_retry(exc, attempt):
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            wait = policy.delay(exc, attempt, rng)
            observer.on_retry(exc, attempt, wait)
            await sleep(wait)
            attempt += 1
        else:
            observer.after_attempt(None)
            return answer, attempt


def attempts_of(exc: BaseException) -> int:
    """How many attempts `call_with_retries` made before raising `exc` (1 if it did not say)."""
    return int(getattr(exc, "attempts", 1))


def failure_reason(exc: BaseException) -> str:
    """A short, low-cardinality name for a failure: `http.503`, `transport`, `timeout`, `malformed.response`."""
    if isinstance(exc, ApiError):
        return f"http.{exc.status}"
    if isinstance(exc, DataActionsError):
        return str(exc.code)
    return type(exc).__name__
