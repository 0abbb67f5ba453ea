"""Run batches with a bounded window in flight, in input order of submission, stopping at the first error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["group_size", "grouped", "run_windowed"]

T = TypeVar("T")
R = TypeVar("R")


def group_size(items: int, window: int, most: int) -> int:
    """How many of `items` to group, at most `most`, so that the groups come in full rounds of `window`.

    Groups run `window` at a time and each works through its items in turn: a last round of fewer groups than
    `window` would leave the rest of the window idle while it works (40 items, 4 at a time, at most 8 per
    group: 8 groups of 5, not 5 of 8).
    """
    if most <= 1 or items <= window:
        return 1
    rounds = -(-items // (window * most))
    return -(-items // (window * rounds))


def grouped(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive items in lists of `size` (the last one shorter), pulled lazily."""
    group: list[T] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


async def run_windowed(
    items: Iterable[T],
    start: Callable[[T], Awaitable[R]],
    window: int,
    on_done: Callable[[R], None] = lambda _: None,
) -> list[R]:
    """Start `start(item)` for each item with at most `window` running; items are pulled lazily.

    The first failure cancels what is still running and is raised; results come back in completion order.
    """
    running: set[asyncio.Future[R]] = set()
    results: list[R] = []
    try:
        for item in items:
            if len(running) >= window:
                running = await _collect(running, results, on_done, asyncio.FIRST_COMPLETED)
            running.add(asyncio.ensure_future(start(item)))
        while running:
            running = await _collect(running, results, on_done, asyncio.FIRST_EXCEPTION)
    except BaseException:
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    return results


async def _collect(
    running: set[asyncio.Future[R]], results: list[R], on_done: Callable[[R], None], when: str
) -> set[asyncio.Future[R]]:
    done, pending = await asyncio.wait(running, return_when=when)
    for future in done:
        result = future.result()
        results.append(result)
        on_done(result)
    return pending
