"""Publish a run to the Prefect UI: a progress bar while it goes, then a markdown report and a table of failures.

| artifact key            | kind     | what                                                                 |
|-------------------------|----------|----------------------------------------------------------------------|
| `enrich-<run>-progress` | progress | rows done / `rows_to_send(spec)`, moved as batches finish            |
| `enrich-<run>`          | markdown | `RunReport.markdown()`: counts, rows/s, latency, retries, top errors |
| `enrich-<run>-failures` | table    | failed and rejected rows (the first `FAILURES_SHOWN`): row key, status, |
|                         |          | error code and message, correlation id                               |

`<run>` is the run id in lowercase, other characters as dashes (plus a short digest when that changed it, so two
run ids never share a key). Artifacts of one key keep their history across reruns (resumes) of a run.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from dataactions.job import JobSpec
from dataactions.pipeline import BatchSummary
from dataactions.progress import listen
from dataactions.report import FAILURES_SHOWN, RunReport, rows_to_send

__all__ = ["RunProgress", "artifact_key", "publish_report", "start_progress"]


def artifact_key(run_id: str, suffix: str = "") -> str:
    """`enrich-<run id>[-suffix]` in the characters Prefect allows in keys (lowercase, digits, dashes)."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", run_id.lower())).strip("-")
    if slug != run_id:
        slug = f"{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:6]}".lstrip("-")
    return "-".join(part for part in ("enrich", slug[:80], suffix) if part)


async def publish_report(report: RunReport) -> None:
    """The run's markdown summary and its table of failed rows (an empty table when none failed)."""
    await acreate_markdown_artifact(markdown=report.markdown(), key=artifact_key(report.run_id),
                                    description=f"bulk enrichment run {report.run_id}: {report.mode} {report.target}")
    failures = report.failures_table()
    total = report.outcomes.failed_rows if report.outcomes else len(failures)
    shown = f"the first {len(failures)} of {total}" if total > len(failures) else f"all {total}"
    await acreate_table_artifact(table=failures, key=artifact_key(report.run_id, "failures"),
                                 description=f"failed and rejected rows of run {report.run_id} ({shown}; "
                                             f"at most {FAILURES_SHOWN} are listed)")


PROGRESS_INTERVAL_SECONDS = 1.0


class RunProgress:
    """A progress artifact, moved as the run's batches finish: one update in flight at a time, at most one a
    second (each is a call to the Prefect API), the last one wins."""

    def __init__(self, run_id: str, artifact_id: UUID, total: int) -> None:
        self.run_id = run_id
        self.artifact_id = artifact_id
        self.total = total
        self.done = 0
        self._sent = 0.0
        self._sent_at = -PROGRESS_INTERVAL_SECONDS
        self._pushing: asyncio.Task[None] | None = None
        self._unlisten = listen(self._on_batch)

    @property
    def percent(self) -> float:
        return 100.0 if self.total <= 0 else min(100.0, 100.0 * self.done / self.total)

    def _on_batch(self, run_id: str, summary: BatchSummary) -> None:
        if run_id != self.run_id:
            return
        self.done += summary.rows
        if self._pushing is None or self._pushing.done():
            self._pushing = asyncio.ensure_future(self._push())

    async def _push(self, *, throttled: bool = True) -> None:
        while self._sent != self.percent:
            if throttled:
                await asyncio.sleep(max(0.0, self._sent_at + PROGRESS_INTERVAL_SECONDS - time.monotonic()))
            value = self.percent
            try:
                await aupdate_progress_artifact(self.artifact_id, value)
            except Exception as exc:  # progress is a courtesy: it never fails a run
                get_run_logger().warning("could not update the progress artifact: %s", exc)
                return
            self._sent, self._sent_at = value, time.monotonic()

    async def aclose(self) -> None:
        """Stop listening and send the final figure at once (the bar shows where the run ended)."""
        self._unlisten()
        if self._pushing is not None:
            self._pushing.cancel()  # rather than wait out its pause: the update below says where the run ended
            await asyncio.gather(self._pushing, return_exceptions=True)
        await self._push(throttled=False)


async def start_progress(spec: JobSpec) -> RunProgress:
    """Count the rows the run goes through and create its progress artifact at 0 %."""
    total = await asyncio.to_thread(rows_to_send, spec)
    retry_of = getattr(spec, "retry_of", None)
    what = f"failed rows of {retry_of} sent again" if retry_of else f"rows of {spec.input_path}"
    artifact_id = await acreate_progress_artifact(
        progress=0.0, key=artifact_key(spec.run_id, "progress"), description=f"{what} done ({total:,} in all)")
    return RunProgress(spec.run_id, artifact_id, total)
