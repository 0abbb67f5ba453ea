"""Per-token sliding-window rate limit, the org's concurrent-execution limit, and Retry-After bookkeeping.

Everything runs on the server's single event loop, so plain counters suffice: no locks.
"""

from __future__ import annotations

import math

from dataactions.emulator.scenario import RateLimit
from dataactions.emulator.tokens import Token

__all__ = ["ConcurrencyGate", "RateLimiter", "arrived_too_early", "record_throttle", "retry_after_seconds"]


class RateLimiter:
    """At most `requests` admitted per token in any window of `per_seconds` (None: unlimited)."""

    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit

    def admit(self, token: Token, now: float) -> float | None:
        """Record an admitted request, or return the time (same clock) at which a slot frees."""
        if self.limit is None:
            return None
        window, span = token.window, self.limit.per_seconds
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= self.limit.requests:
            return window[0] + span
        window.append(now)
        return None


def retry_after_seconds(free_at: float, now: float) -> int:
    """Seconds until a slot frees, rounded up, at least 1."""
    return max(1, math.ceil(free_at - now))


class ConcurrencyGate:
    """Counts executions in flight; refuses entry past `maximum` (None: unlimited)."""

    def __init__(self, maximum: int | None) -> None:
        self.maximum = maximum
        self.in_flight = 0
        self.peak = 0

    def try_enter(self) -> bool:
        if self.maximum is not None and self.in_flight >= self.maximum:
            return False
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    def reset_peak(self) -> None:
        self.peak = self.in_flight


def record_throttle(token: Token, now: float, retry_at: float) -> None:
    """Remember a 429 told this token to wait until `retry_at`; a wait already running is not extended."""
    if now >= token.retry_at:
        token.throttled_at = now
        token.retry_at = retry_at


def arrived_too_early(token: Token, now: float, grace: float) -> bool:
    """True for a request sent while the token was told to wait.

    Requests arriving within `grace` seconds of the first 429 were already in flight when the
    client received it, so they do not count.
    """
    return token.throttled_at + grace <= now < token.retry_at
