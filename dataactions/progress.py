"""In-process progress events: the command line's progress bar listens to the batches of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataactions.pipeline import BatchSummary

__all__ = ["ProgressListener", "listen", "publish_progress"]

ProgressListener = Callable[[str, "BatchSummary"], None]
_listeners: list[ProgressListener] = []


def listen(listener: ProgressListener) -> Callable[[], None]:
    """Register `listener(run_id, summary)`; returns a function that unregisters it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def publish_progress(run_id: str, summary: BatchSummary) -> None:
    for listener in list(_listeners):
        listener(run_id, summary)
