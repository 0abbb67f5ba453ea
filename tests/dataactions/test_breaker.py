"""CircuitBreaker: which failures count, the sliding window, and what an open breaker says."""

from __future__ import annotations

import pytest

from dataactions.breaker import CircuitBreaker, looks_down
from dataactions.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ResponseTimeout,
    TransportError,
    api_error_from_response,
)


def http_error(status: int) -> Exception:
    return api_error_from_response(status, {"code": "c", "message": "m"}, {})


@pytest.mark.parametrize(
    ("exc", "down"),
    [
        (TransportError("refused", may_have_reached_server=False), True),
        (ResponseTimeout("slow"), True),
        (MalformedResponseError("half"), True),
        (http_error(500), True),
        (http_error(503), True),
        (http_error(504), True),
        (http_error(400), False),
        (http_error(404), False),
        (http_error(429), False),
        (http_error(401), False),
        (ValueError("bug"), False),
        (None, False),
    ],
)
def test_only_signs_of_a_down_remote_count(exc: Exception | None, down: bool) -> None:
    assert looks_down(exc) is down


def test_opens_when_the_window_is_mostly_failures_and_says_what_failed() -> None:
    breaker = CircuitBreaker(window=10, failure_ratio=0.8)
    for _ in range(2):
        breaker.record(None)
    for _ in range(5):
        breaker.record(http_error(503))
    for _ in range(3):
        breaker.record(TransportError("refused", may_have_reached_server=False))
    assert breaker.is_open
    with pytest.raises(CircuitOpenError) as raised:
        breaker.check()
    message = str(raised.value)
    assert "8 of the last 10 calls failed" in message
    assert "5x http.503" in message and "3x transport" in message


def test_waits_for_min_calls_before_judging() -> None:
    breaker = CircuitBreaker(window=10, failure_ratio=0.5, min_calls=4)
    for _ in range(3):
        breaker.record(ResponseTimeout("slow"))
    assert not breaker.is_open
    breaker.record(ResponseTimeout("slow"))
    assert breaker.is_open


def test_by_default_a_full_window_is_needed() -> None:
    breaker = CircuitBreaker(window=5, failure_ratio=1.0)
    for _ in range(4):
        breaker.record(http_error(503))
    breaker.check()
    breaker.record(http_error(503))
    assert breaker.is_open


def test_client_errors_keep_it_closed() -> None:
    breaker = CircuitBreaker(window=5, failure_ratio=0.2)
    for status in (400, 404, 429, 413, 401, 400):
        breaker.record(http_error(status))
    breaker.check()
    assert not breaker.is_open


def test_old_failures_slide_out_of_the_window() -> None:
    breaker = CircuitBreaker(window=4, failure_ratio=0.75)
    for _ in range(3):
        breaker.record(http_error(502))
    breaker.record(None)
    assert breaker.is_open
    breaker.record(None)
    assert not breaker.is_open
    for _ in range(4):
        breaker.record(None)
    breaker.record(http_error(502))
    assert not breaker.is_open


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(window=0, failure_ratio=0.5)
    with pytest.raises(ValueError):
        CircuitBreaker(window=5, failure_ratio=0)
