"""Prefect tasks: thin wrappers that give the library's steps retries, caching, names and logs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State
from prefect.tasks import exponential_backoff

from dataactions.errors import DataActionsError
from dataactions.job import JobSpec
from dataactions.pipeline import BatchSummary, enrich_batch
from dataactions.readers import InputBatch
from dataactions.runtime import runtime_for, runtime_scope

__all__ = ["batch_cache", "enrich_batches_task", "health_check"]


def retry_only_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retries a batch only when what stopped it may pass: never a terminal error.

    Reads the exception from the state's data: `state.result()` is a coroutine inside an async task.
    """
    error = getattr(state.data, "result", state.data)
    return isinstance(error, DataActionsError) and error.transient


@dataclass
class BatchCache(CachePolicy):
    """Keyed on the batch's content and on what shapes its result (run, target, mode, mapping)."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        spec: JobSpec = inputs["spec"]
        batches: list[InputBatch] = inputs["batches"]
        identity = spec.results_identity(_file_digest(spec.mapping_path))
        contents = ",".join(f"{batch.index}:{batch.digest()}" for batch in batches)
        return hashlib.sha256(f"{identity}:{contents}".encode()).hexdigest()


def _file_digest(path: str | None) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else "no-mapping"


def batch_cache(spec: JobSpec) -> CachePolicy:
    """Cache records live beside the outputs, so removing an output directory removes its cache too."""
    return BatchCache().configure(key_storage=Path(spec.output_dir) / "_prefect" / "cache")


@task(name="health-check", task_run_name="health check {spec.mode} {spec.target}", cache_policy=NO_CACHE, retries=0)
async def health_check(spec: JobSpec) -> dict[str, Any]:
    found = await runtime_for(spec).check_health()
    get_run_logger().info("healthy: %s %r is reachable with the configured credentials", spec.mode, spec.target)
    return found


def _which(first: int, last: int) -> str:
    """`batch 3`, or `batches 0-9`: how a task run's logs and name call its batches."""
    return f"batch {first}" if first == last else f"batches {first}-{last}"


def _batches_run_name(parameters: dict[str, Any]) -> str:
    batches: list[InputBatch] = parameters["batches"]
    first, last = batches[0], batches[-1]
    rows = f"{first.first_row}+" if first is last else f"{first.first_row}-{last.last_row}"
    return f"{_which(first.index, last.index)} (rows {rows})"


@task(
    name="enrich-batches",
    task_run_name=_batches_run_name,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_only_transient,
    cache_policy=NO_CACHE,
)
async def enrich_batches_task(spec: JobSpec, batches: list[InputBatch]) -> list[BatchSummary]:
    """Enrich consecutive batches one after the other, each committed on its own (a retry skips those)."""
    summaries: list[BatchSummary] = []
    async with runtime_scope(spec) as runtime:  # the flow's shared one, or this task's own on a Dask worker
        await runtime.ensure_action()
        try:
            for batch in batches:
                summaries.append(await enrich_batch(runtime, batch))
        finally:  # one line per task run, also for the batches committed before a failure
            if summaries:
                get_run_logger().info(_outcome_line(summaries))
    return summaries


def _outcome_line(summaries: list[BatchSummary]) -> str:
    """`batches 0-9: 5000 rows, 4990 succeeded, 10 failed, 0 rejected`. One line per task run rather than per
    batch: each log line is shipped to the Prefect server and stored there, and at one per batch the lines cost
    about 2 % of an unlimited run's rows/s (interleaved flows)."""
    which = _which(summaries[0].index, summaries[-1].index)
    rows, succeeded, failed, rejected = (sum(getattr(s, name) for s in summaries)
                                         for name in ("rows", "succeeded", "failed", "rejected"))
    line = f"{which}: {rows} rows, {succeeded} succeeded, {failed} failed, {rejected} rejected"
    resumed = sum(s.resumed for s in summaries)
    if resumed == len(summaries):
        return f"{line} (already committed)"
    return f"{line} ({resumed} of them already committed)" if resumed else line
