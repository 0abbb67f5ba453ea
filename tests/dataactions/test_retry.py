"""RetryPolicy decisions and delays, and call_with_retries with a recorded (never real) sleep."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataactions.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ResponseTimeout,
    TransportError,
    api_error_from_response,
)
from dataactions.retry import (
    DEFAULT_RETRY_AFTER_SECONDS,
    AttemptObserver,
    RetryPolicy,
    attempts_of,
    call_with_retries,
    failure_reason,
)
from dataactions.settings import PipelineSettings

pytestmark = pytest.mark.anyio

POLICY = RetryPolicy()
SAFE = RetryPolicy(retry_unsafe=False)


def http_error(status: int, retry_after: str | None = None) -> Exception:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return api_error_from_response(status, {"code": f"code.{status}", "message": "m"}, headers)


@pytest.mark.parametrize(
    ("exc", "unsafe_ok", "safe_only"),
    [
        (http_error(429), True, True),
        (http_error(502), True, False),
        (http_error(503), True, False),
        (http_error(504), True, False),
        (http_error(500), False, False),
        (http_error(400), False, False),
        (http_error(401), False, False),
        (http_error(404), False, False),
        (http_error(413), False, False),
        (TransportError("refused", may_have_reached_server=False), True, True),
        (TransportError("reset", may_have_reached_server=True), True, False),
        (ResponseTimeout("slow"), True, False),
        (MalformedResponseError("half a body"), True, False),
        (CircuitOpenError("open"), False, False),
        (ValueError("a bug"), False, False),
    ],
)
def test_what_is_retried(exc: Exception, unsafe_ok: bool, safe_only: bool) -> None:
    assert POLICY.should_retry(exc, 1) is unsafe_ok
    assert SAFE.should_retry(exc, 1) is safe_only


def test_nothing_is_retried_past_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(http_error(503), 2)
    assert not policy.should_retry(http_error(503), 3)


def test_the_retryable_statuses_are_a_setting() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({409, 500}))
    assert policy.should_retry(http_error(409), 1)
    assert policy.should_retry(http_error(500), 1)
    assert not policy.should_retry(http_error(503), 1)
    assert not policy.should_retry(http_error(429), 1)


def test_429_waits_retry_after_capped_or_three_seconds() -> None:
    rng = random.Random(0)
    assert POLICY.delay(http_error(429, "7"), 1, rng) == 7.0
    assert RetryPolicy(max_retry_after_seconds=5).delay(http_error(429, "42"), 1, rng) == 5.0
    assert POLICY.delay(http_error(429), 1, rng) == DEFAULT_RETRY_AFTER_SECONDS == 3.0


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=600),
    seed=st.integers(),
    status=st.sampled_from([502, 503, 504]),
)
def test_backoff_is_full_jitter_within_its_ceiling(
    attempt: int, base: float, cap: float, seed: int, status: int
) -> None:
    policy = RetryPolicy(backoff_base_seconds=base, backoff_max_seconds=cap)
    wait = policy.delay(http_error(status), attempt, random.Random(seed))
    assert 0.0 <= wait <= min(cap, base * 2.0 ** (attempt - 1))


@given(retry_after=st.integers(min_value=0, max_value=10**6), cap=st.floats(min_value=0, max_value=600))
def test_rate_limit_waits_are_within_the_cap(retry_after: int, cap: float) -> None:
    wait = RetryPolicy(max_retry_after_seconds=cap).delay(http_error(429, str(retry_after)), 1, random.Random())
    assert 0.0 <= wait <= cap


def test_policy_from_settings() -> None:
    pipeline = PipelineSettings.model_validate({
        "retry_statuses": [503], "retry_unsafe": False, "max_attempts": 2,
        "backoff_base_seconds": 0.1, "backoff_max_seconds": 1, "max_retry_after_seconds": 9,
    })
    assert RetryPolicy.from_settings(pipeline) == RetryPolicy(frozenset({503}), False, 2, 0.1, 1.0, 9.0)


class Flaky:
    """Fails with the given exceptions in turn, then answers."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


class Recorder(AttemptObserver):
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.retries: list[tuple[str, int, float]] = []
        self.attempts: list[str | None] = []

    def before_attempt(self) -> None:
        self.attempts.append("start")

    def after_attempt(self, exc: BaseException | None) -> None:
        self.attempts.append(None if exc is None else failure_reason(exc))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_retry(self, exc: BaseException, attempt: int, delay: float) -> None:
        self.retries.append((failure_reason(exc), attempt, delay))


async def _call(fn: Any, policy: RetryPolicy, recorder: Recorder) -> Any:
    return await call_with_retries(fn, policy, observer=recorder, sleep=recorder.sleep, rng=random.Random(3))


async def test_transient_failures_are_retried_until_an_answer() -> None:
    recorder = Recorder()
    fn = Flaky(http_error(503), http_error(429, "2"))
    assert await _call(fn, POLICY, recorder) == ("answer", 3)
    assert [(reason, attempt) for reason, attempt, _ in recorder.retries] == [("http.503", 1), ("http.429", 2)]
    assert recorder.sleeps[1] == 2.0 and recorder.sleeps == [delay for _, _, delay in recorder.retries]
    assert recorder.attempts == ["start", "http.503", "start", "http.429", "start", None]


async def test_an_observer_stops_the_call_before_an_attempt() -> None:
    class Refusing(Recorder):
        def before_attempt(self) -> None:
            if len(self.attempts) >= 2:  # after one failed attempt
                raise RuntimeError("stop")
            super().before_attempt()

    recorder, fn = Refusing(), Flaky(http_error(503))
    with pytest.raises(RuntimeError, match="stop"):
        await _call(fn, POLICY, recorder)
    assert fn.calls == 1 and recorder.attempts == ["start", "http.503"]


async def test_giving_up_raises_the_last_failure_with_its_attempts() -> None:
    recorder = Recorder()
    fn = Flaky(*(http_error(503) for _ in range(10)))
    with pytest.raises(Exception) as raised:
        await _call(fn, RetryPolicy(max_attempts=4), recorder)
    assert raised.value.status == 503  # type: ignore[attr-defined]
    assert attempts_of(raised.value) == 4 == fn.calls
    assert len(recorder.sleeps) == 3


async def test_terminal_failures_are_raised_at_once() -> None:
    recorder = Recorder()
    fn = Flaky(http_error(400))
    with pytest.raises(Exception) as raised:
        await _call(fn, POLICY, recorder)
    assert attempts_of(raised.value) == 1 and fn.calls == 1 and recorder.sleeps == []


async def test_a_bug_is_not_retried() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError):
        await _call(Flaky(ValueError("bug")), POLICY, recorder)
    assert recorder.sleeps == []


def test_failure_reasons_are_low_cardinality() -> None:
    assert failure_reason(http_error(503)) == "http.503"
    assert failure_reason(ResponseTimeout("slow")) == "timeout"
    assert failure_reason(TransportError("reset")) == "transport"
    assert failure_reason(MalformedResponseError("x")) == "malformed.response"
    assert failure_reason(KeyError("x")) == "KeyError"
