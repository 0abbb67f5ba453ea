"""What a run did, in numbers: built from batch summaries, shown in the terminal and as Prefect artifacts.

    report = RunReport.from_summaries(spec, summaries, seconds)   # counts, rows/s, 429s (from the batches)
    report.read_outcomes()       # latency percentiles, retries, top errors, failed rows: read back from the
                                 # run's committed results and audit parts (resumed batches included)
    report.markdown()            # the summary artifact
    report.failures_table()      # the failed and rejected rows (first FAILURES_SHOWN), for a table artifact
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from dataactions.job import JobSpec
from dataactions.pipeline import BatchSummary
from dataactions.readers import count_rows
from dataactions.sink import PartStore

__all__ = ["FAILURES_SHOWN", "ErrorGroup", "FailureCeiling", "RunOutcomes", "RunReport", "rows_to_send"]

FAILURES_SHOWN = 200
"""Failed and rejected rows listed in the failures table (the counts always cover every row)."""
TOP_ERRORS = 10
EXAMPLE_CORRELATION_IDS = 3
_FAILURE_COLUMNS = ("row_key", "status", "error_code", "error_message", "correlation_id")


def rows_to_send(spec: JobSpec) -> int:
    """The rows a run goes through (its progress's 100 %): the input's, or a retry run's failed rows."""
    if getattr(spec, "retry_of", None) is None:
        return count_rows(spec.input_path)
    from dataactions.runs import batches_for  # runs builds on this module's neighbours; import when needed

    return sum(batch.size for batch in batches_for(spec))


@dataclass
class ErrorGroup:
    """The rows that failed with one error code: how many, one message, a few Genesys correlation ids."""

    code: str
    rows: int
    example_message: str = ""
    correlation_ids: list[str] = field(default_factory=list)


@dataclass
class RunOutcomes:
    """What the run's committed parts say: invocation latency (audit `duration_ms`), retries, failed rows."""

    invocations: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, p99, max; empty without invocations
    retries: int = 0
    failed_rows: int = 0  # failed + rejected
    top_errors: list[ErrorGroup] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first FAILURES_SHOWN, in row order

    @classmethod
    def read(cls, output_dir: str | Path, run_id: str, *, shown: int = FAILURES_SHOWN) -> RunOutcomes:
        """Read the run's committed results and audit parts (only the columns needed)."""
        audit = _run_table(PartStore(output_dir, "audit"), run_id,
                           ["row_key", "attempts", "duration_ms", "correlation_id"])
        results = _run_table(PartStore(output_dir, "results"), run_id,
                             ["row_key", "row_number", "status", "error_code", "error_message"])
        outcomes = cls()
        if audit is not None:
            durations = pc.drop_null(audit.column("duration_ms"))
            outcomes.invocations = len(durations)
            if len(durations):
                p50, p95, p99 = pc.quantile(durations, q=[0.5, 0.95, 0.99]).to_pylist()
                outcomes.latency_ms = {"p50": p50, "p95": p95, "p99": p99, "max": pc.max(durations).as_py()}
            attempts = audit.column("attempts")
            sent = pc.sum(pc.greater(attempts, 0)).as_py() or 0
            outcomes.retries = int((pc.sum(attempts).as_py() or 0) - sent)
        if results is not None:
            failed = results.filter(pc.not_equal(results.column("status"), "succeeded"))
            outcomes.failed_rows = failed.num_rows
            if failed.num_rows:
                failed = _with_correlation_ids(failed.sort_by("row_number"), audit)
                outcomes.top_errors = _top_errors(failed)
                outcomes.failures = failed.slice(0, shown).select(list(_FAILURE_COLUMNS)).to_pylist()
        return outcomes

    def as_dict(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "latency_ms": {k: round(v, 1) for k, v in self.latency_ms.items()},
                "retries": self.retries, "top_errors": [asdict(group) for group in self.top_errors]}


def _run_table(store: PartStore, run_id: str, columns: list[str]) -> pa.Table | None:
    parts = sorted(store.parts(run_id))
    if not parts:
        return None
    files = [str(store.part_path(run_id, name)) for name in parts]
    return ds.dataset(files, format="parquet").to_table(columns=columns)


def _with_correlation_ids(failed: pa.Table, audit: pa.Table | None) -> pa.Table:
    if audit is None:
        return failed.append_column("correlation_id", pa.nulls(failed.num_rows, pa.string()))
    ids = audit.select(["row_key", "correlation_id"])
    joined = failed.join(ids, "row_key", join_type="left outer", use_threads=False)
    return joined.sort_by("row_number")


def _top_errors(failed: pa.Table) -> list[ErrorGroup]:
    codes = failed.column("error_code").fill_null("unknown")
    counts = pc.value_counts(codes).to_pylist()
    counts.sort(key=lambda item: (-item["counts"], item["values"]))
    groups = []
    for item in counts[:TOP_ERRORS]:
        rows = failed.filter(pc.equal(codes, item["values"]))
        messages = pc.drop_null(rows.column("error_message"))
        ids = pc.drop_null(rows.column("correlation_id")).slice(0, EXAMPLE_CORRELATION_IDS).to_pylist()
        groups.append(ErrorGroup(item["values"], item["counts"], messages[0].as_py() if len(messages) else "", ids))
    return groups


@dataclass
class RunReport:
    run_id: str
    target: str
    mode: str
    output_dir: str
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    attempts: int = 0
    batches: int = 0
    resumed_batches: int = 0
    seconds: float = 0.0
    error_codes: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None
    rate_limited: int = 0
    outcomes: RunOutcomes | None = None

    @classmethod
    def from_summaries(cls, spec: JobSpec, summaries: list[BatchSummary], seconds: float) -> RunReport:
        report = cls(spec.run_id, spec.target, spec.mode, spec.output_dir, seconds=seconds)
        codes: Counter[str] = Counter()
        for summary in summaries:
            report.add(summary)
            codes.update(summary.error_codes)
        report.error_codes = dict(codes.most_common())
        return report

    def add(self, summary: BatchSummary) -> None:
        self.rows += summary.rows
        self.succeeded += summary.succeeded
        self.failed += summary.failed
        self.rejected += summary.rejected
        self.attempts += summary.attempts
        self.batches += 1
        self.resumed_batches += summary.resumed
        self.rate_limited += summary.rate_limited

    def read_outcomes(self) -> RunOutcomes:
        """Latency, retries, top errors and failed rows, read back from the run's committed parts."""
        self.outcomes = RunOutcomes.read(self.output_dir, self.run_id)
        return self.outcomes

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def results_path(self) -> Path:
        return Path(self.output_dir) / "results" / f"run_id={self.run_id}"

    @property
    def audit_path(self) -> Path:
        return Path(self.output_dir) / "audit" / f"run_id={self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "outcomes"}
        return fields | {"rows_per_second": round(self.rows_per_second, 1),
                         "results_path": str(self.results_path), "audit_path": str(self.audit_path)} | (
                             self.outcomes.as_dict() if self.outcomes else {})

    def markdown(self) -> str:
        lines = [f"# Run `{self.run_id}` — {self.mode} `{self.target}`", "",
                 f"**Stopped:** {_cell(self.stopped)}" if self.stopped else "**Completed.**", "",
                 "| rows | succeeded | failed | rejected | attempts | batches (resumed) | seconds | rows/s |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|",
                 f"| {self.rows} | {self.succeeded} | {self.failed} | {self.rejected} | {self.attempts} | "
                 f"{self.batches} ({self.resumed_batches}) | {self.seconds:.1f} | {self.rows_per_second:.0f} |", ""]
        lines += self._invocation_lines() + self._error_lines()
        lines += ["## Outputs", "", f"- results: `{self.results_path}`", f"- audit: `{self.audit_path}`"]
        return "\n".join(lines)

    def _invocation_lines(self) -> list[str]:
        outcomes = self.outcomes or RunOutcomes()
        latency = outcomes.latency_ms
        ms = [f"{latency[k]:,.0f}" if k in latency else "–" for k in ("p50", "p95", "p99", "max")]
        return ["## Invocations", "",
                "| invocations | attempts | retries | 429 answers | p50 ms | p95 ms | p99 ms | max ms |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {outcomes.invocations:,} | {self.attempts:,} | {outcomes.retries:,} | {self.rate_limited:,} | "
                + " | ".join(ms) + " |", "",
                "Latency is per row, from its first attempt to its outcome (retries and waits included), read from "
                "the audit's `duration_ms`; 429 answers count those met by the batches sent in this session.", ""]

    def _error_lines(self) -> list[str]:
        groups = self.outcomes.top_errors if self.outcomes else [
            ErrorGroup(code, count) for code, count in list(self.error_codes.items())[:TOP_ERRORS]]
        if not groups:
            return ["No failed or rejected rows.", ""]
        lines = ["## Top errors", "", "| error code | rows | example message | example correlation ids |",
                 "|---|---:|---|---|"]
        lines += [f"| `{_cell(g.code)}` | {g.rows:,} | {_cell(g.example_message)} | "
                  f"{', '.join(f'`{_cell(i)}`' for i in g.correlation_ids) or '–'} |" for g in groups]
        return lines + [""]

    def failures_table(self) -> list[dict[str, Any]]:
        """Failed and rejected rows (the first FAILURES_SHOWN, in row order) as table-artifact rows."""
        return [{k: ("" if v is None else v) for k, v in row.items()}
                for row in (self.outcomes.failures if self.outcomes else [])]


@dataclass
class FailureCeiling:
    """Stops a run once failed rows pass a count (>= 1) or a share of rows seen (< 1)."""

    limit: float | None
    seen: int = 0
    failed: int = 0

    def add(self, summary: BatchSummary) -> str | None:
        self.seen += summary.rows
        self.failed += summary.failed
        if self.limit is None:
            return None
        threshold = self.limit if self.limit >= 1 else self.limit * self.seen
        if self.failed > threshold:
            return f"{self.failed} failed rows out of {self.seen} passed the ceiling --max-failed-rows {self.limit:g}"
        return None


def _cell(text: str | None, limit: int = 300) -> str:
    """Text that stays inside one markdown table cell."""
    text = " ".join((text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
