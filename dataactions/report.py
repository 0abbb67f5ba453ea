"""What a run did, in numbers: built from batch summaries, shown in the terminal and as a Prefect artifact."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataactions.job import JobSpec
from dataactions.pipeline import BatchSummary

__all__ = ["RunReport", "FailureCeiling"]


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
        return asdict(self) | {"rows_per_second": round(self.rows_per_second, 1),
                               "results_path": str(self.results_path), "audit_path": str(self.audit_path)}

    def markdown(self) -> str:
        lines = [f"# Run `{self.run_id}` — {self.mode} `{self.target}`", "",
                 "| rows | succeeded | failed | rejected | attempts | batches (resumed) | seconds | rows/s |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|",
                 f"| {self.rows} | {self.succeeded} | {self.failed} | {self.rejected} | {self.attempts} | "
                 f"{self.batches} ({self.resumed_batches}) | {self.seconds:.1f} | {self.rows_per_second:.0f} |", ""]
        if self.stopped:
            lines += [f"**Stopped:** {self.stopped}", ""]
        if self.error_codes:
            lines += ["| error code | rows |", "|---|---:|"]
            lines += [f"| {code} | {count} |" for code, count in list(self.error_codes.items())[:10]]
            lines.append("")
        lines += [f"Results: `{self.results_path}`", f"Audit: `{self.audit_path}`"]
        return "\n".join(lines)


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
