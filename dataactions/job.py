"""What one bulk run is: a `JobSpec` holds everything that shapes its output and nothing secret.

The spec travels as Prefect task input and into cache keys, so it carries paths and knobs, never credentials:
those are read from the environment by the process that does the work.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from dataactions.errors import ConfigurationError
from dataactions.settings import Settings, load_settings

__all__ = ["JobSpec", "Mode", "new_run_id", "plan_job"]

Mode = Literal["execute", "workflow"]
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


UNLIMITED_BATCHES_PER_TASK = 16


@dataclass(frozen=True)
class JobSpec:
    input_path: str
    output_dir: str
    run_id: str
    action_id: str | None = None
    mode: Mode = "execute"
    flow_id: str | None = None
    mapping_path: str | None = None
    key_column: str | None = None
    flatten: bool = False
    batch_size: int = 500
    batches_per_task: int = 1
    concurrency: int = 16
    rate_per_minute: float = 290.0
    max_failed_rows: float | None = None
    retry_of: str | None = None  # a retry run (dataactions.runs): the first run whose failed rows it sends again

    def __post_init__(self) -> None:
        if not _RUN_ID.fullmatch(self.run_id):
            raise ConfigurationError(
                f"run id {self.run_id!r} must start with a letter or digit and hold only letters, digits, '.', '_', '-'"
            )
        if self.mode == "execute" and not self.action_id:
            raise ConfigurationError("--action is required in execute mode")
        if self.mode == "workflow" and not self.flow_id:
            raise ConfigurationError("--flow-id is required in workflow mode")
        if not Path(self.input_path).is_file():
            raise ConfigurationError(f"input file {self.input_path!r} does not exist")
        if self.mapping_path and not Path(self.mapping_path).is_file():
            raise ConfigurationError(f"mapping file {self.mapping_path!r} does not exist")

    @property
    def target(self) -> str:
        """The action id (execute mode) or the workflow's flow id (workflow mode)."""
        return (self.action_id if self.mode == "execute" else self.flow_id) or ""

    def with_absolute_paths(self) -> JobSpec:
        resolve = lambda p: str(Path(p).resolve()) if p else p  # noqa: E731
        return replace(self, input_path=resolve(self.input_path), output_dir=resolve(self.output_dir),
                       mapping_path=resolve(self.mapping_path))

    def results_identity(self, mapping_digest: str) -> str:
        """A digest of what decides a batch's result, for cache keys: target, mode, mapping and run."""
        shaping = {"run_id": self.run_id, "target": self.target, "mode": self.mode, "flatten": self.flatten,
                   "mapping": mapping_digest, "output_dir": self.output_dir, "key_column": self.key_column}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:24]

    def as_parameters(self) -> dict[str, object]:
        return asdict(self)

    def share(self, parts: int) -> JobSpec:
        """The limits of one of `parts` batch tasks that run at once, each with its own client (Dask workers),
        so that together they keep the run's: `rate_per_minute / parts` per OAuth client, `concurrency // parts`.

        Needs `parts <= concurrency` (each task sends at least one request at a time).
        """
        if not 1 <= parts <= self.concurrency:
            raise ConfigurationError(f"cannot share a concurrency of {self.concurrency} between {parts} tasks in "
                                     f"flight; run at most {self.concurrency} at once")
        return replace(self, rate_per_minute=self.rate_per_minute / parts, concurrency=self.concurrency // parts)


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def plan_job(*, input_path: str, run_id: str | None = None, batch_size: int | None = None,
             concurrency: int | None = None, rate_per_minute: float | None = None,
             output_dir: str | None = None, **choices: object) -> JobSpec:
    """The run's spec, unset knobs taken from the settings; bad settings or arguments fail here, before any row."""
    settings = settings_with_credentials(batch_size=batch_size, concurrency=concurrency,
                                         rate_per_minute=rate_per_minute, output_dir=output_dir)
    pipeline = settings.pipeline
    per_task = pipeline.batches_per_task or _batches_per_task(pipeline.rate_per_minute, choices.get("max_failed_rows"))
    spec = JobSpec(input_path=input_path, run_id=run_id or new_run_id(), batch_size=pipeline.batch_size,
                   batches_per_task=per_task,
                   concurrency=pipeline.concurrency, rate_per_minute=pipeline.rate_per_minute,
                   output_dir=str(pipeline.output_dir), **choices)  # type: ignore[arg-type]
    return spec.with_absolute_paths()


def _batches_per_task(rate_per_minute: float, max_failed_rows: object) -> int:
    """Under a rate limit a batch lasts long enough (500 rows at 290/min: ~100 s) to be a task run of its own.
    Without one it lasts well under a second, and Prefect's cost per task run (~15 ms here, and as much again in
    the server recording it) took ~15 % of the throughput at 1 batch per task; up to 8 per task, ~5 %; up to 16,
    ~3 % more rows/s than 8 (interleaved flows of 20,000 rows).
    The flow learns a batch's outcome when its task run ends, so a failure ceiling keeps 1 batch per task.
    """
    if rate_per_minute > 0 or max_failed_rows is not None:
        return 1
    return UNLIMITED_BATCHES_PER_TASK


def settings_with_credentials(**pipeline_overrides: object) -> Settings:
    """Environment settings with explicit knobs on top; credentials and the audit key must be there."""
    settings = load_settings(pipeline=pipeline_overrides)
    settings.genesys.require_credentials()
    settings.pipeline.require_audit_key()
    return settings
