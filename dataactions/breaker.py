"""A circuit breaker that stops a run when the remote looks down.

    breaker = CircuitBreaker(window=50, failure_ratio=0.9)
    breaker.check()             # before an attempt: raises CircuitOpenError when open
    breaker.record(None)        # the attempt got an answer
    breaker.record(exc)         # ... or failed with exc

It judges the last `window` attempts once at least `min_calls` (default: `window`) were recorded. Only failures
that say "the remote looks down" count: no connection, a dropped or timed-out request, a 5xx, a malformed answer.
A 4xx (including 429) is the remote answering, so it counts as up. The breaker does not close again by itself:
a run it stopped is resumed by running it again.
"""

from __future__ import annotations

from collections import Counter, deque

from dataactions.errors import ApiError, CircuitOpenError, MalformedResponseError, TransportError
from dataactions.retry import failure_reason

__all__ = ["CircuitBreaker", "looks_down"]


def looks_down(exc: BaseException | None) -> bool:
    """Whether a failure suggests the remote is down (rather than answering with an error)."""
    if isinstance(exc, ApiError):
        return exc.status >= 500
    return isinstance(exc, TransportError | MalformedResponseError)


class CircuitBreaker:
    def __init__(self, window: int, failure_ratio: float, min_calls: int | None = None) -> None:
        if window < 1 or not 0 < failure_ratio <= 1:
            raise ValueError("window must be >= 1 and failure_ratio in (0, 1]")
        self.window = window
        self.failure_ratio = failure_ratio
        self.min_calls = window if min_calls is None else max(1, min(min_calls, window))
        self._outcomes: deque[str | None] = deque(maxlen=window)
        self._failures = 0

    @property
    def is_open(self) -> bool:
        calls = len(self._outcomes)
        return calls >= self.min_calls and self._failures >= self.failure_ratio * calls

    def record(self, exc: BaseException | None) -> None:
        """Record one attempt: None for an answer, else the exception it failed with."""
        outcome = failure_reason(exc) if exc is not None and looks_down(exc) else None
        if len(self._outcomes) == self.window and self._outcomes[0] is not None:
            self._failures -= 1
        self._outcomes.append(outcome)
        if outcome is not None:
            self._failures += 1

    def check(self) -> None:
        """Raise `CircuitOpenError`, saying what failed, if the breaker is open."""
        if self.is_open:
            raise CircuitOpenError(self._describe())

    def _describe(self) -> str:
        reasons = Counter(o for o in self._outcomes if o is not None)
        listed = ", ".join(f"{count}x {reason}" for reason, count in reasons.most_common())
        return (
            f"circuit open: {self._failures} of the last {len(self._outcomes)} calls failed ({listed}); "
            "the remote looks down, so the run stopped"
        )
