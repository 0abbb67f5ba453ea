"""`python -m benchmarks.layers` runs every layer end to end on a few rows (the figures themselves are `make bench`'s
business: nothing here is timed)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.layers import LAYERS, main


@pytest.fixture
def restored_environment() -> Iterator[None]:
    """The tool points the process's settings at its emulator (as `make bench` does); later tests must not see it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("restored_environment")
def test_every_layer_sends_the_rows_and_reports_a_figure() -> None:
    figures = main(["--rows", "150", "--reps", "1", "--concurrency", "8"])
    assert list(figures) == list(LAYERS)
    assert all(cpu > 0 and rate > 0 for cpu, rate in figures.values())
