"""RateLimiter and ConcurrencyLimit, on virtual time: nothing here sleeps for real."""

from __future__ import annotations

import asyncio
import random

import pytest

from dataactions.limits import ConcurrencyLimit, RateLimiter, slot_priority
from tests.dataactions.conftest import VirtualClock

pytestmark = pytest.mark.anyio


async def _forbidden_sleep(seconds: float) -> None:
    raise AssertionError(f"the fast path slept {seconds} s")


async def _send_times(limiter: RateLimiter, clock: VirtualClock, count: int, workers: int) -> list[float]:
    sent: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            await limiter.acquire()
            sent.append(clock())

    await clock.run(*(worker() for _ in range(workers)))
    return sent


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_free_slot_is_taken_without_sleeping() -> None:
    limiter = RateLimiter(60, clock=lambda: 5.0, sleep=_forbidden_sleep)
    await limiter.acquire()


def test_try_acquire_takes_only_a_slot_that_is_due() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(60, clock=clock, sleep=_forbidden_sleep)
    assert limiter.try_acquire()  # due now: taken
    assert not limiter.try_acquire() and limiter.wait_seconds() == 1.0  # the next is 1 s away; nothing reserved
    clock.now = 1.0
    assert limiter.try_acquire()
    limiter.pause(5)
    clock.now = 4.0
    assert not limiter.try_acquire() and limiter.wait_seconds() == 2.0


async def test_zero_rate_never_waits() -> None:
    limiter = RateLimiter(0, clock=lambda: 5.0, sleep=_forbidden_sleep)
    for _ in range(1000):
        await limiter.acquire()


async def test_requests_are_spaced_by_the_rate() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    assert await _send_times(limiter, clock, 5, workers=3) == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_burst_lets_a_few_through_after_a_quiet_spell() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(60, burst=3, clock=clock, sleep=clock.sleep)
    assert await _send_times(limiter, clock, 5, workers=5) == [0.0, 0.0, 0.0, 1.0, 2.0]


async def test_a_long_run_keeps_the_rate_even_when_sleeps_overshoot() -> None:
    clock = VirtualClock(now=0.0)
    jitter = random.Random(1)

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + jitter.uniform(0.0, 0.02))

    limiter = RateLimiter(300, clock=clock, sleep=late_sleep)
    sent = await _send_times(limiter, clock, 3000, workers=16)
    achieved_per_minute = (len(sent) - 1) / (sent[-1] - sent[0]) * 60
    assert achieved_per_minute >= 0.97 * 300
    assert _max_in_window(sent, 1.0) <= 300 / 60 + 1


async def test_pause_holds_every_waiter_and_new_requests_until_it_ends() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        sent.append(clock())

    async def throttled_at(moment: float, seconds: float) -> None:
        await clock.sleep(moment)
        limiter.pause(seconds)

    async def late_request(moment: float) -> None:
        await clock.sleep(moment)
        await request()

    await clock.run(*(request() for _ in range(4)), throttled_at(0.5, 10), late_request(3.0))
    assert sent[0] == 0.0
    assert all(t >= 10.5 for t in sent[1:])
    assert _max_in_window(sent[1:], 1.0) <= 1


async def test_pause_applies_with_the_limiter_off() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    limiter.pause(3)
    assert await _send_times(limiter, clock, 3, workers=3) == [3.0, 3.0, 3.0]


async def test_a_shorter_pause_does_not_cut_a_longer_one() -> None:
    clock = VirtualClock(now=0.0)
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    limiter.pause(5)
    limiter.pause(1)
    assert limiter.paused_until == 5.0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(-1)
    with pytest.raises(ValueError):
        RateLimiter(60, burst=0)
    with pytest.raises(ValueError):
        ConcurrencyLimit(0)


async def test_concurrency_limit_admits_at_most_n() -> None:
    limit = ConcurrencyLimit(3)
    release = asyncio.Event()
    peak = 0

    async def hold() -> None:
        nonlocal peak
        async with limit:
            peak = max(peak, limit.in_flight)
            await release.wait()

    tasks = [asyncio.ensure_future(hold()) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert limit.in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3 and limit.in_flight == 0


async def test_a_freed_slot_goes_to_the_lowest_priority_then_the_longest_waiting() -> None:
    limit = ConcurrencyLimit(1)
    served: list[str] = []

    async def wait_for_slot(name: str, priority: int) -> None:
        with slot_priority(priority):
            async with limit:
                served.append(name)
                await asyncio.sleep(0)

    async with limit:
        tasks = [asyncio.ensure_future(wait_for_slot(name, priority))
                 for name, priority in (("late batch", 2), ("first of batch 1", 1), ("second of batch 1", 1))]
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert served == ["first of batch 1", "second of batch 1", "late batch"]
    assert limit.in_flight == 0


async def test_a_cancelled_waiter_neither_takes_nor_loses_a_slot() -> None:
    limit = ConcurrencyLimit(1)
    async with limit:
        waiter = asyncio.ensure_future(limit.__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert limit.in_flight == 0
    async with limit:
        assert limit.in_flight == 1
    assert limit.in_flight == 0
