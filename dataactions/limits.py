"""Client-side limits: a request rate per OAuth token, and a number of requests in flight.

    limiter = RateLimiter(300)           # at most 300 requests a minute, evenly spaced
    limiter = RateLimiter(300, burst=5)  # ... allowing 5 back to back after a quiet spell
    limiter = RateLimiter(0)             # off (pauses after a 429 still apply)
    await limiter.acquire()              # returns when this request may leave
    limiter.pause(42)                    # a 429 said Retry-After: 42; nothing leaves for 42 s
    with bounded_wait(0.5):              # in this context (task), acquire raises RateBudgetSpent rather
        await limiter.acquire()          # than wait more than 0.5 s (the real-time endpoint answers 429)

    async with ConcurrencyLimit(16):     # one of at most 16 requests in flight
        ...
    with slot_priority(3):               # waiters here yield a freed slot to those of priority < 3
        ...
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType

from dataactions.errors import RateBudgetSpent

__all__ = ["ConcurrencyLimit", "RateLimiter", "bounded_wait", "slot_priority"]

_WAIT_BOUND: ContextVar[float | None] = ContextVar("dataactions_rate_wait_bound", default=None)
_PRIORITY: ContextVar[int] = ContextVar("dataactions_slot_priority", default=0)


@contextmanager
def bounded_wait(seconds: float) -> Iterator[None]:
    """Within this context, `RateLimiter.acquire` raises `RateBudgetSpent` (reserving nothing) instead of
    waiting more than `seconds` for a slot; outside it, acquire waits as long as the rate requires."""
    token = _WAIT_BOUND.set(max(0.0, seconds))
    try:
        yield
    finally:
        _WAIT_BOUND.reset(token)


class RateLimiter:
    """GCRA (the virtual-scheduling form of a leaky bucket).

    Every request reserves the next theoretical arrival time, spaced `60 / rate_per_minute` apart, and
    leaves at it (up to `burst - 1` intervals early). Slots are absolute times, so the usual small lateness of
    a timer does not accumulate into a lower rate. A request that leaves more than a quarter interval late
    (the event loop was busy, the process was descheduled) shifts every later slot by the excess instead of
    letting the requests queued behind it catch up back to back: otherwise a stall of d seconds would put
    d * rate / 60 extra requests into the next window, and against a short server window (50 per second) a
    20 ms stall was enough for a 429 — each of which pauses the lane for Retry-After (>= 1 s; `make bench`).
    So in any window of W seconds at most `W * rate / 60 + burst + 1/4` requests leave, and a stall costs the
    rate only its length beyond a quarter interval. A request that finds its slot already due returns without
    sleeping or locking anything.
    """

    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_minute < 0 or burst < 1:
            raise ValueError("rate_per_minute must be >= 0 (0 = off) and burst >= 1")
        self.rate_per_minute = rate_per_minute
        self._interval = 60.0 / rate_per_minute if rate_per_minute else 0.0
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._tat = -math.inf
        self._paused_until = -math.inf
        self._slack = self._interval / 4
        self._slip = 0.0  # total shift of the schedule after late departures (see the class docstring)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def wait_seconds(self) -> float:
        """How long a request asking now would wait (0.0: it may leave at once); reserves nothing."""
        now = self._clock()
        tat = self._tat if self._tat > now else now
        return max(0.0, tat - self._tolerance - now, self._paused_until - now)

    def try_acquire(self) -> bool:
        """Reserve this request's slot if it may leave now; False reserves nothing (then await `acquire`).

        Most requests find their slot due: this spares each of them a coroutine."""
        if self.wait_seconds() > 0.0:
            return False
        self._reserve(self._clock())
        return True

    async def acquire(self) -> None:
        """Wait for this request's slot (and for the end of any pause); see `bounded_wait`."""
        now = self._clock()
        bound = _WAIT_BOUND.get()
        if bound is not None and (wait := self.wait_seconds()) > bound:
            raise RateBudgetSpent(wait)
        at, slip = self._reserve(now), self._slip
        slept = False
        while (due := at + self._slip - slip) > now:  # slots reserved before a shift move with it
            await self._sleep(due - now)
            now, slept = self._clock(), True
            if now < self._paused_until:
                at, slip = self._reserve(now), self._slip
                if bound is not None and at - now > bound:
                    raise RateBudgetSpent(at - now)
        late = now - due if slept else 0.0
        if late > self._slack and self._interval:
            self._slip += late - self._slack
            self._tat += late - self._slack

    def pause(self, seconds: float) -> None:
        """Hold every request, queued or future, until `seconds` from now; slots resume spaced after it."""
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self._tat = max(self._tat, until)

    def _reserve(self, now: float) -> float:
        tat = self._tat if self._tat > now else now
        self._tat = tat + self._interval
        return max(tat - self._tolerance, self._paused_until)


@contextmanager
def slot_priority(priority: int) -> Iterator[None]:
    """Within this context (and the tasks it starts), waiters for a `ConcurrencyLimit` slot are served before
    those with a larger `priority` (default 0), first come first served among equals."""
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


class ConcurrencyLimit:
    """At most `limit` holders at once; a freed slot goes to the waiter of lowest `slot_priority`, then the
    longest waiting.

    The pipeline gives each batch's rows its batch index as priority: with several batches in flight the oldest
    one takes every slot it can use, so batches finish one after another and the next batch's rows fill the
    slots while a finished one commits — rather than all of them advancing in step, finishing together and
    leaving the slots idle until the next ones start (about 4 % of the 100 ms latency benchmark).
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def __aenter__(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (_PRIORITY.get(), next(self._arrivals), granted))
        try:
            await granted  # a leaving holder hands its slot over: in_flight stays as it is
        except BaseException:
            if granted.done() and not granted.cancelled():  # handed over, then cancelled before using it
                self._release()
            else:
                granted.cancel()  # skipped when popped
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            granted = heapq.heappop(self._waiters)[2]
            if not granted.done():
                granted.set_result(None)
                return
        self.in_flight -= 1
