"""Where `bulk_enrich` runs its batch tasks.

    local  in the flow's own event loop (the default): every batch shares the flow process's one client, so one
           token per OAuth client, one rate limiter and one concurrency limit serve the whole run
    dask   on a dask.distributed cluster (`dask_address`, or a LocalCluster of this machine): each task opens a
           client of its own on its worker and gets an equal share of the run's limits (`JobSpec.share`), so the
           tasks in flight together keep `rate_per_minute` (per OAuth client) and `concurrency` however Dask
           spreads them

Scale-out needs a Prefect server (PREFECT_API_URL): under an ephemeral API every Dask worker would start a
temporary server of its own (prefect-notes.md §3).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from prefect import Task, get_run_logger
from prefect.settings import get_current_settings
from prefect.utilities.annotations import quote

from dataactions.errors import ConfigurationError
from dataactions.job import JobSpec
from dataactions.pipeline import BatchSummary
from dataactions.readers import InputBatch

__all__ = ["BatchRunner", "Runner", "batch_runner"]

Runner = Literal["local", "dask"]
BatchTask = Task[..., Any]


@dataclass(frozen=True)
class BatchRunner:
    """Starts batch tasks: `window` of them at most in flight, each given `spec` (its share of the limits)."""

    spec: JobSpec
    window: int
    _submit: Callable[[BatchTask, JobSpec, list[InputBatch]], Awaitable[list[BatchSummary]]]

    def start(self, task: BatchTask, batches: list[InputBatch]) -> Awaitable[list[BatchSummary]]:
        return self._submit(task, self.spec, batches)


@asynccontextmanager
async def batch_runner(runner: Runner, spec: JobSpec, window: int,
                       dask_address: str | None = None) -> AsyncIterator[BatchRunner]:
    if runner == "local":
        yield BatchRunner(spec, window, _in_flow_loop)
        return
    if runner != "dask":
        raise ConfigurationError(f"unknown runner {runner!r}; use local or dask")
    window = min(window, spec.concurrency)
    task_runner = _dask_task_runner(window, dask_address)
    await asyncio.to_thread(task_runner.__enter__)
    try:
        client = await asyncio.to_thread(lambda: task_runner.client)  # connects, or starts the LocalCluster
        share = spec.share(window)
        get_run_logger().info(
            "batches on Dask at %s, %d in flight, each with a share of the limits: %g requests/min per OAuth "
            "client, %d in flight", client.scheduler.address, window, share.rate_per_minute, share.concurrency)
        yield BatchRunner(share, window,
                          lambda task, task_spec, batches: _on_dask(task_runner, task, task_spec, batches))
    finally:
        await asyncio.to_thread(task_runner.__exit__, None, None, None)


async def _in_flow_loop(task: BatchTask, spec: JobSpec, batches: list[InputBatch]) -> list[BatchSummary]:
    # quote: Prefect would otherwise walk every row of the batches twice per task run looking for futures to
    # resolve (visit_collection), about a tenth of the flow's CPU at 500 rows per batch (make bench)
    return await task(spec, quote(batches))  # type: ignore[no-any-return]


def _dask_task_runner(window: int, address: str | None) -> Any:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigurationError(
            "the dask runner needs prefect-dask: pip install 'dataactions[dask]'") from None
    if get_current_settings().api.url is None:
        raise ConfigurationError(
            "the dask runner needs a Prefect server: start one (prefect server start) and set PREFECT_API_URL "
            "for the flow and its workers; under the ephemeral API every Dask worker would start its own")
    if address:
        return DaskTaskRunner(address=address)
    workers = max(1, min(window, os.cpu_count() or 1))
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": math.ceil(window / workers),
                                          "processes": True})


async def _on_dask(task_runner: Any, task: BatchTask, spec: JobSpec,
                   batches: list[InputBatch]) -> list[BatchSummary]:
    """Submit one batch task to the cluster and wait for it without blocking the flow's event loop.

    Cancelled (the run stopped, or another batch failed), it cancels the Dask future too.
    """
    # Not quote(batches): Dask ships the parameters as they are, and the worker's task engine would get the
    # annotation (a namedtuple, which Dask rebuilds as a plain tuple) instead of the batch.
    future = task_runner.submit(task, parameters={"spec": spec, "batches": batches})
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()

    def settle(_: object) -> None:  # on the Dask client's thread
        loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

    future.wrapped_future.add_done_callback(settle)
    try:
        await finished
    except asyncio.CancelledError:
        future.wrapped_future.cancel()
        raise
    return await asyncio.to_thread(future.result)  # type: ignore[no-any-return]
