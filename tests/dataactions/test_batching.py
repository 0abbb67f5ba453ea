"""Grouping batches into task runs: consecutive, and in full rounds of the window."""

from __future__ import annotations

import pytest

from dataactions.batching import group_size, grouped


@pytest.mark.parametrize(("items", "window", "most", "expected"), [
    (40, 4, 8, 5),  # 8 groups in two full rounds, not 5 groups of which the last one runs alone
    (12, 4, 8, 3),
    (2_000, 4, 8, 8),
    (5, 4, 2, 2),
    (4, 4, 8, 1),  # no more batches than the window: each one its own group, all in flight
    (0, 4, 8, 1),
    (40, 4, 1, 1),
])
def test_groups_are_as_large_as_allowed_but_fill_every_round_of_the_window(
        items: int, window: int, most: int, expected: int) -> None:
    assert group_size(items, window, most) == expected


def test_grouped_keeps_order_and_the_last_group_holds_the_rest() -> None:
    assert list(grouped(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(grouped([], 3)) == []
