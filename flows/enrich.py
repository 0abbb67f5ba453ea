"""`bulk_enrich`: read a file in batches, check health once, enrich each batch, land Parquet, report.

    input file ─▶ health check ─▶ batches (a few in flight) ─▶ validate ▸ invoke ▸ normalize ▸ write ─▶ report
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import flow, get_run_logger

from dataactions.batching import group_size, grouped, run_windowed
from dataactions.errors import CircuitOpenError, RunStopped
from dataactions.job import JobSpec, Mode
from dataactions.pipeline import BatchSummary, part_name
from dataactions.progress import publish_progress
from dataactions.readers import InputBatch
from dataactions.report import FailureCeiling, RunReport
from dataactions.runs import batches_for, begin_run, plan_run
from dataactions.runtime import close_runtime
from dataactions.sink import PartStore
from flows.runners import Runner, batch_runner
from tasks.enrich import batch_cache, enrich_batches_task, health_check
from tasks.report import publish_report, start_progress

__all__ = ["bulk_enrich"]


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    if params.get("retry_failed_of"):
        return f"retry failed rows of {params['retry_failed_of']} [{params.get('run_id') or 'new retry'}]"
    return f"enrich {params.get('action_id') or params.get('flow_id')} [{params.get('run_id') or 'new run'}]"


@flow(name="bulk-enrich", flow_run_name=_run_name, log_prints=False)
async def bulk_enrich(
    input_path: str | None = None,
    action_id: str | None = None,
    mapping_path: str | None = None,
    output_dir: str | None = None,
    run_id: str | None = None,
    mode: Mode = "execute",
    flow_id: str | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    rate_per_minute: float | None = None,
    key_column: str | None = None,
    flatten: bool = False,
    max_failed_rows: float | None = None,
    retry_failed_of: str | None = None,
    batches_in_flight: int = 4,
    runner: Runner = "local",
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Enrich every row of `input_path` with a Data Action (or a workflow) and land results and audit as Parquet.

    Rerunning with the same `run_id` resumes: batches already committed are not sent again. `runner="dask"` runs
    the batch tasks on the Dask cluster at `dask_address` (default: a local one), splitting the limits between
    the batches in flight (flows/runners.py). `retry_failed_of=RUN` sends again only the rows whose latest
    outcome in RUN (and its earlier retries) is `failed`, as the new run `RUN-retry-N` (dataactions/runs.py).
    """
    spec = plan_run(input_path=input_path, action_id=action_id, mapping_path=mapping_path, output_dir=output_dir,
                    run_id=run_id, mode=mode, flow_id=flow_id, batch_size=batch_size, concurrency=concurrency,
                    rate_per_minute=rate_per_minute, key_column=key_column, flatten=flatten,
                    max_failed_rows=max_failed_rows, retry_failed_of=retry_failed_of)
    logger = get_run_logger()
    logger.info("run %s: %s %r over %s, batches of %d", spec.run_id, spec.mode, spec.target, spec.input_path,
                spec.batch_size)
    started = time.perf_counter()
    summaries: list[BatchSummary] = []
    stopped = None
    progress = await start_progress(spec)  # a progress artifact, moved as batches finish
    try:
        await health_check(spec)
        begin_run(spec)
        summaries, stopped = await _enrich_batches(spec, progress.total, batches_in_flight, runner, dask_address)
    finally:
        await close_runtime(spec)
        await progress.aclose()
    report = RunReport.from_summaries(spec, summaries, time.perf_counter() - started)
    report.stopped = stopped
    await asyncio.to_thread(report.read_outcomes)  # latency, retries, failed rows: from the committed parts
    await publish_report(report)
    if stopped:
        raise RunStopped(f"run {spec.run_id} stopped: {stopped}; its committed batches are kept, "
                         f"rerun with the same run id to resume")
    return report.as_dict()


async def _enrich_batches(spec: JobSpec, rows: int, window: int, runner: Runner,
                          dask_address: str | None) -> tuple[list[BatchSummary], str | None]:
    committed = PartStore(spec.output_dir, "results").parts(spec.run_id)
    cached = enrich_batches_task.with_options(cache_policy=batch_cache(spec))
    pending = cached.with_options(refresh_cache=True)
    ceiling = FailureCeiling(spec.max_failed_rows)
    summaries: list[BatchSummary] = []

    def start(group: list[InputBatch]):  # type: ignore[no-untyped-def]
        done = all(part_name(batch) in committed for batch in group)
        return where.start(cached if done else pending, group)

    def on_done(finished: list[BatchSummary]) -> None:
        reason = None
        for summary in finished:  # all committed: every one is counted before the ceiling can stop the run
            summary.resumed = summary.part in committed
            summaries.append(summary)
            publish_progress(spec.run_id, summary)
            reason = ceiling.add(summary)
        if reason:
            raise RunStopped(reason)

    try:
        async with batch_runner(runner, spec, window, dask_address) as where:
            size = group_size(-(-rows // spec.batch_size), where.window, spec.batches_per_task)
            await run_windowed(grouped(batches_for(spec), size), start, where.window, on_done)
    except (RunStopped, CircuitOpenError) as stop:
        get_run_logger().warning("run %s stopped: %s", spec.run_id, stop)
        return summaries, str(stop)
    return summaries, None
