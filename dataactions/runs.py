"""Runs on disk: the manifest a run leaves, what `dataactions runs show` reports, and retries of failed rows.

    <output>/_runs/<run_id>.json       the run's spec, written when it starts (paths and knobs, never a secret)
    <output>/audit/run_id=<id>/        one audit part per batch, written just before its results part
    <output>/results/run_id=<id>/      one results part per batch: the batch's commit record

    status = show_run(out, "nightly-1")             # committed, pending and in-doubt batches, failed rows
    spec = plan_retry("nightly-1")                  # run "nightly-1-retry-1": only the rows that failed
    latest = latest_outcomes(out, "nightly-1")      # one row per input row: its last outcome over the retries

Retries: a retry run is a run of its own (`<run>-retry-<n>`, its own results, audit and manifest, its `retry_of`
naming the first run) whose rows are the input rows whose latest outcome, over the first run and the retries
before it, is `failed`. Its rows keep their input row numbers and keys, so `latest_outcomes` can lay the attempts
over each other; a retry run resumes like any run (rerun it with its own run id), and always selects the same rows.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from dataactions.errors import ConfigurationError
from dataactions.job import JobSpec, plan_job, settings_with_credentials
from dataactions.pipeline import part_name
from dataactions.readers import InputBatch, iter_batches
from dataactions.sink import PartStore, validate_run_id

__all__ = [
    "MANIFEST_DIR",
    "BatchState",
    "PendingBatch",
    "RunStatus",
    "batches_for",
    "begin_run",
    "failed_rows",
    "latest_outcomes",
    "manifest_path",
    "plan_retry",
    "plan_run",
    "read_manifest",
    "retry_chain",
    "show_run",
    "spec_from_manifest",
    "write_manifest",
]

MANIFEST_DIR = "_runs"
_MANIFEST_VERSION = 1
_RETRY_SUFFIX = re.compile(r"-retry-(\d+)\Z")
_SPEC_FIELDS = frozenset(f.name for f in fields(JobSpec))


# -- manifest ----------------------------------------------------------------------------------------------------


def manifest_path(output_dir: str | Path, run_id: str) -> Path:
    return Path(output_dir) / MANIFEST_DIR / f"{validate_run_id(run_id)}.json"


def read_manifest(output_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The manifest of a run, or None when the run left none (not started, or started by an older version)."""
    path = manifest_path(output_dir, run_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ConfigurationError(f"the manifest {path} is not valid JSON: {exc}") from None


def write_manifest(spec: JobSpec) -> Path:
    """Record the run's spec (no secrets: a `JobSpec` holds none) atomically; a resumed run keeps its first
    `created_at` and `attempt`."""
    path = manifest_path(spec.output_dir, spec.run_id)
    earlier = read_manifest(spec.output_dir, spec.run_id) or {}
    now = datetime.now(UTC).isoformat()
    manifest = {
        "version": _MANIFEST_VERSION,
        **spec.as_parameters(),
        "attempt": earlier.get("attempt", _next_attempt(spec)),
        "created_at": earlier.get("created_at", now),
        "started_at": now,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _next_attempt(spec: JobSpec) -> int:
    if spec.retry_of is None:
        return 0
    attempts = [m.get("attempt", 0) for _, m in _chain_manifests(spec.output_dir, spec.retry_of)]
    return max(attempts, default=0) + 1


def begin_run(spec: JobSpec) -> int:
    """What a run does once, before its first batch: sweep the temporary files a killed writer left in its
    directories (readers never see them) and write its manifest. Returns how many temporaries were swept."""
    swept = sum(PartStore(spec.output_dir, name).sweep_temporaries(spec.run_id) for name in ("audit", "results"))
    write_manifest(spec)
    return swept


def spec_from_manifest(manifest: dict[str, Any]) -> JobSpec:
    """The `JobSpec` a manifest records (ConfigurationError when its input or mapping file is gone)."""
    return JobSpec(**{k: v for k, v in manifest.items() if k in _SPEC_FIELDS})


# -- planning ----------------------------------------------------------------------------------------------------


def plan_run(*, retry_failed_of: str | None = None, input_path: str | None = None, **parameters: Any) -> JobSpec:
    """The spec of a run: `plan_job`, or `plan_retry` when `retry_failed_of` names a run.

    Rerunning a run id resumes it, so the rerun must shape its batches as the first start did: a batch size left
    out is taken from the run's manifest, and a different input, target, mapping, key column or batch size is
    refused (its batches would not match the committed parts, and every row would be sent again).
    """
    if retry_failed_of:
        return plan_retry(retry_failed_of, input_path=input_path, **parameters)
    if not input_path:
        raise ConfigurationError("an input file is required (or --retry-failed RUN_ID to retry a run's failed rows)")
    earlier = None
    if parameters.get("run_id"):
        out = settings_with_credentials(output_dir=parameters.get("output_dir")).pipeline.output_dir.resolve()
        earlier = read_manifest(out, parameters["run_id"])
        if earlier is not None and parameters.get("batch_size") is None:
            parameters["batch_size"] = earlier.get("batch_size")
    spec = plan_job(input_path=input_path, **parameters)
    if earlier is not None:
        _refuse_reshaping(spec, earlier)
    return spec


_SHAPING = ("input_path", "mode", "action_id", "flow_id", "mapping_path", "key_column", "flatten", "batch_size",
            "retry_of")


def _refuse_reshaping(spec: JobSpec, earlier: dict[str, Any]) -> None:
    now = spec.as_parameters()
    changed = [name for name in _SHAPING if name in earlier and earlier[name] != now[name]]
    if changed:
        said = ", ".join(f"{name} {earlier[name]!r} (now {now[name]!r})" for name in changed)
        raise ConfigurationError(f"run {spec.run_id!r} was started with {said}; a rerun of a run id resumes it "
                                 f"and must not change what its batches are. Use a new --run-id for a new run")


def plan_retry(of_run: str, *, output_dir: str | None = None, run_id: str | None = None,
               concurrency: int | None = None, rate_per_minute: float | None = None,
               max_failed_rows: float | None = None, **same_as_first_run: Any) -> JobSpec:
    """The spec of a run that sends again the rows of `of_run` (or of its first run) whose latest outcome is
    `failed`. Input, target, mapping, key column and batch size are the first run's; arguments that say
    otherwise are refused. Without `run_id` it is the next `<first run>-retry-<n>`."""
    out = settings_with_credentials(output_dir=output_dir).pipeline.output_dir.resolve()
    manifest = read_manifest(out, of_run)
    if manifest is None:
        raise ConfigurationError(f"cannot retry run {of_run!r}: it left no manifest in {out / MANIFEST_DIR} "
                                 f"(is --output the directory it wrote to?)")
    base = manifest.get("retry_of") or of_run
    first = read_manifest(out, base) if base != of_run else manifest
    if first is None:
        raise ConfigurationError(f"cannot retry run {of_run!r}: its first run {base!r} left no manifest in {out}")
    batch_size = same_as_first_run.pop("batch_size", None)
    _refuse_changes(first, same_as_first_run)
    run_id = run_id or _next_retry_id(out, base)
    existing = read_manifest(out, run_id)
    if existing is not None and existing.get("retry_of") != base:
        raise ConfigurationError(f"run {run_id!r} already exists and is not a retry of {base!r}")
    if existing is not None and batch_size not in (None, existing.get("batch_size")):
        raise ConfigurationError(f"retry run {run_id!r} was started with batch_size {existing.get('batch_size')}; "
                                 f"resuming it must not change it")
    choices = {k: first.get(k) for k in ("action_id", "mode", "flow_id", "mapping_path", "key_column", "flatten")}
    return plan_job(input_path=first["input_path"], output_dir=str(out), run_id=run_id,
                    batch_size=batch_size or (existing or first).get("batch_size"), concurrency=concurrency,
                    rate_per_minute=rate_per_minute, max_failed_rows=max_failed_rows, retry_of=base, **choices)


def _refuse_changes(first: dict[str, Any], given: dict[str, Any]) -> None:
    for name, value in given.items():
        if value is None or name not in _SPEC_FIELDS or name in {"mode", "flatten"}:
            continue
        recorded = first.get(name)
        if name in {"input_path", "mapping_path"} and recorded is not None:
            value = str(Path(value).resolve())
        if value != recorded:
            raise ConfigurationError(f"a retry re-reads run {first['run_id']!r} as it was: {name} is {recorded!r} "
                                     f"there, not {value!r}; leave {name} out")


def _next_retry_id(output_dir: Path, base: str) -> str:
    used = [int(m.group(1)) for run, _ in _chain_manifests(output_dir, base)
            if (m := _RETRY_SUFFIX.search(run)) and run.startswith(base)]
    return f"{base}-retry-{max(used, default=0) + 1}"


# -- retries -----------------------------------------------------------------------------------------------------


def _chain_manifests(output_dir: str | Path, base: str) -> list[tuple[str, dict[str, Any]]]:
    """The retries of run `base` (not `base` itself), in attempt order."""
    directory = Path(output_dir) / MANIFEST_DIR
    found = []
    for path in directory.glob("*.json") if directory.is_dir() else ():
        if path.name.startswith("."):
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if manifest.get("retry_of") == base:
            found.append((path.stem, manifest))
    return sorted(found, key=lambda item: (item[1].get("attempt", 0), item[1].get("created_at", "")))


def retry_chain(output_dir: str | Path, run_id: str) -> list[str]:
    """The first run of `run_id` followed by its retries, in attempt order."""
    manifest = read_manifest(output_dir, run_id) or {}
    base = manifest.get("retry_of") or run_id
    return [base, *(run for run, _ in _chain_manifests(output_dir, base))]


def _runs_before(spec: JobSpec) -> list[str]:
    """The runs whose outcomes a retry run's rows are chosen from: its first run and the retries before it."""
    assert spec.retry_of is not None
    own = read_manifest(spec.output_dir, spec.run_id)
    chain = _chain_manifests(spec.output_dir, spec.retry_of)
    if own is not None:
        earlier = [run for run, m in chain if m.get("attempt", 0) < own.get("attempt", 0)]
    else:
        earlier = [run for run, _ in chain if run != spec.run_id]
    return [spec.retry_of, *earlier]


_OUTCOME_COLUMNS = ["row_key", "row_number", "status"]


def latest_outcomes(output_dir: str | Path, run_id: str, *, runs: list[str] | None = None,
                    columns: list[str] | None = None) -> pa.Table:
    """One row per input row of `run_id`'s first run: the result of its latest attempt over the first run and
    its retries (or over `runs`, in that order), with `run_id` naming the run that attempt belongs to.

    A row that no run committed yet (its batch is pending) is absent.
    """
    runs = runs if runs is not None else retry_chain(output_dir, run_id)
    store = PartStore(output_dir, "results")
    tables = []
    for order, run in enumerate(runs):
        table = _read(store, run, None if columns is None else list(dict.fromkeys([*_OUTCOME_COLUMNS, *columns])))
        if table.num_rows:
            tables.append(table.append_column("run_id", pa.array([run] * table.num_rows, pa.string()))
                          .append_column("_order", pa.array(np.full(table.num_rows, order), pa.int32())))
    if not tables:
        return pa.table({"row_key": pa.array([], pa.string()), "row_number": pa.array([], pa.int64()),
                         "status": pa.array([], pa.string()), "run_id": pa.array([], pa.string())})
    merged = pa.concat_tables(tables, promote_options="permissive")
    merged = merged.sort_by([("row_number", "ascending"), ("_order", "descending")])
    numbers = merged.column("row_number").to_numpy()
    first = np.ones(len(numbers), dtype=bool)
    first[1:] = numbers[1:] != numbers[:-1]
    return merged.filter(pa.array(first)).drop_columns(["_order"])


def _read(store: PartStore, run_id: str, columns: list[str] | None) -> pa.Table:
    """The committed parts of a run, only `columns` of them (all when None)."""
    if columns is None:
        return store.read(run_id)
    files = [str(store.part_path(run_id, name)) for name in sorted(store.parts(run_id))]
    if not files:
        return pa.table({"row_key": pa.array([], pa.string()), "row_number": pa.array([], pa.int64()),
                         "status": pa.array([], pa.string())}).select([c for c in columns if c in _OUTCOME_COLUMNS])
    return ds.dataset(files, format="parquet").to_table(columns=columns)


def failed_rows(output_dir: str | Path, runs: list[str]) -> dict[int, str]:
    """Row number → row key of every row whose latest outcome over `runs` (in order) is `failed`."""
    latest = latest_outcomes(output_dir, runs[0], runs=runs, columns=[])
    failed = latest.filter(pc.equal(latest.column("status"), "failed"))
    numbers, keys = failed.column("row_number").to_pylist(), failed.column("row_key").to_pylist()
    return dict(zip(numbers, keys, strict=True))


def batches_for(spec: JobSpec) -> Iterator[InputBatch]:
    """The batches a run sends: every input row, or for a retry run the rows that failed before it."""
    if spec.retry_of is None:
        return iter_batches(spec.input_path, spec.batch_size, key_column=spec.key_column)
    return _retry_batches(spec, failed_rows(spec.output_dir, _runs_before(spec)))


def _retry_batches(spec: JobSpec, wanted: dict[int, str]) -> Iterator[InputBatch]:
    """The wanted rows of the input, in input order, `batch_size` per batch; each keeps its row number and key."""
    chosen: tuple[list[dict[str, Any]], list[str], list[int]] = ([], [], [])
    index = 0
    if not wanted:
        return
    for batch in iter_batches(spec.input_path, spec.batch_size, key_column=spec.key_column):
        for row, key, number in zip(batch.rows, batch.row_keys, batch.row_numbers, strict=True):
            if number not in wanted:
                continue
            if wanted[number] != key:
                raise ConfigurationError(f"the input {spec.input_path} changed since run {spec.retry_of!r}: row "
                                         f"{number} is keyed {key!r} now, {wanted[number]!r} then")
            for column, value in zip(chosen, (row, key, number), strict=True):
                column.append(value)  # type: ignore[attr-defined]
            if len(chosen[0]) == spec.batch_size:
                yield _batch(index, chosen)
                index, chosen = index + 1, ([], [], [])
    if chosen[0]:
        yield _batch(index, chosen)


def _batch(index: int, chosen: tuple[list[dict[str, Any]], list[str], list[int]]) -> InputBatch:
    rows, keys, numbers = chosen
    return InputBatch(index, numbers[0], rows, keys, numbers, [])


# -- status ------------------------------------------------------------------------------------------------------


@dataclass
class BatchState:
    """A committed batch: its results part and its row counts."""

    index: int
    part: str
    rows: int
    succeeded: int
    failed: int
    rejected: int


@dataclass
class PendingBatch:
    """A batch with no committed part: a resumed run sends it."""

    index: int
    part: str
    first_row: int
    rows: int


@dataclass
class RunStatus:
    run_id: str
    output_dir: str
    manifest: dict[str, Any] | None
    committed: list[BatchState]
    failed_total: int
    failed_rows: list[dict[str, Any]]
    in_doubt: list[str]
    temporaries: int
    retries: list[str]
    pending: list[PendingBatch] | None = None
    pending_unknown_because: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows_committed(self) -> int:
        return sum(batch.rows for batch in self.committed)

    @property
    def complete(self) -> bool | None:
        """True when no batch is pending, None when that cannot be told (no input to compare with)."""
        return None if self.pending is None else not self.pending

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_committed": self.rows_committed, "complete": self.complete}

    def render(self) -> str:
        """The status as text for a terminal."""
        manifest = self.manifest or {}
        lines = [f"run {self.run_id} in {self.output_dir}"]
        if manifest:
            target = manifest.get("action_id") or manifest.get("flow_id")
            lines.append(f"  {manifest.get('mode')} {target} over {manifest.get('input_path')}, batches of "
                         f"{manifest.get('batch_size')}" + (f"; retry of {manifest['retry_of']}"
                                                             if manifest.get("retry_of") else ""))
        totals = [sum(getattr(b, k) for b in self.committed) for k in ("succeeded", "failed", "rejected")]
        lines.append(f"  committed: {len(self.committed)} batches, {self.rows_committed} rows "
                     f"({totals[0]} succeeded, {totals[1]} failed, {totals[2]} rejected)")
        for batch in self.committed:
            lines.append(f"    batch {batch.index:>6}  {batch.part}  {batch.rows} rows: {batch.succeeded} succeeded, "
                         f"{batch.failed} failed, {batch.rejected} rejected")
        if self.pending is None:
            lines.append(f"  pending: unknown ({self.pending_unknown_because})")
        else:
            rows = sum(batch.rows for batch in self.pending)
            lines.append(f"  pending: {len(self.pending)} batches, {rows} rows"
                         + ("" if self.pending else " — the run is complete"))
            for batch in self.pending[:20]:
                lines.append(f"    batch {batch.index:>6}  rows from {batch.first_row}, {batch.rows} rows")
            if len(self.pending) > 20:
                lines.append(f"    ... {len(self.pending) - 20} more")
        if self.in_doubt:
            lines.append(f"  sent but not committed (sent again on resume): {', '.join(self.in_doubt)}")
        if self.temporaries:
            lines.append(f"  {self.temporaries} temporary file(s) of a killed writer (swept when the run resumes)")
        lines.append(f"  failed rows: {self.failed_total}")
        for row in self.failed_rows:
            lines.append(f"    row {row['row_number']} (key {row['row_key']}): {row['error_code']}: "
                         f"{row['error_message']}")
        if self.failed_total > len(self.failed_rows):
            lines.append(f"    ... {self.failed_total - len(self.failed_rows)} more (--limit, or --json)")
        if self.retries:
            lines.append(f"  retries: {', '.join(self.retries)}")
        lines += [f"  note: {note}" for note in self.notes]
        if self.pending:
            lines.append(f"  resume: dataactions enrich ... --run-id {self.run_id}")
        if self.failed_total:
            lines.append(f"  retry the failed rows: dataactions enrich --retry-failed {self.run_id} "
                         f"--output {self.output_dir}")
        return "\n".join(lines)


def show_run(output_dir: str | Path, run_id: str, *, input_path: str | None = None, batch_size: int | None = None,
             key_column: str | None = None, limit: int = 50) -> RunStatus:
    """What a run has done and what is left: committed batches with their counts, failed rows (the first
    `limit`), batches sent but not committed, and — from its manifest, or `input_path`/`batch_size` — the
    batches still pending."""
    out = Path(output_dir).resolve()
    results, audit = PartStore(out, "results"), PartStore(out, "audit")
    manifest = read_manifest(out, run_id)
    committed_names = results.parts(run_id)
    if manifest is None and not committed_names and not audit.parts(run_id):
        raise ConfigurationError(f"no run {run_id!r} in {out}: no manifest, no results, no audit")
    committed = [_batch_state(results, run_id, name) for name in sorted(committed_names)]
    failed_total, failed = _failed_of(results, run_id, committed_names, limit)
    status = RunStatus(
        run_id=run_id, output_dir=str(out), manifest=manifest, committed=committed, failed_total=failed_total,
        failed_rows=failed, in_doubt=sorted(audit.parts(run_id) - committed_names),
        temporaries=sum(_temporaries(store, run_id) for store in (results, audit)),
        retries=[] if (manifest or {}).get("retry_of") else retry_chain(out, run_id)[1:],
    )
    _fill_pending(status, committed_names, input_path, batch_size, key_column)
    return status


def _batch_state(store: PartStore, run_id: str, name: str) -> BatchState:
    statuses = store.read_part(run_id, name, columns=["status"]).column("status")
    counts = {k: int(pc.sum(pc.equal(statuses, k)).as_py() or 0) for k in ("succeeded", "failed", "rejected")}
    return BatchState(_index_of(name), name, len(statuses), **counts)


def _index_of(part: str) -> int:
    try:
        return int(part.split("-")[1])
    except (IndexError, ValueError):
        return -1


def _failed_of(store: PartStore, run_id: str, names: set[str], limit: int) -> tuple[int, list[dict[str, Any]]]:
    if not names:
        return 0, []
    table = _read(store, run_id, ["row_number", "row_key", "error_code", "error_message", "status"])
    failed = table.filter(pc.equal(table.column("status"), "failed")).sort_by("row_number")
    rows = failed.slice(0, max(limit, 0)).drop_columns(["status"]).to_pylist()
    return failed.num_rows, rows


def _temporaries(store: PartStore, run_id: str) -> int:
    directory = store.run_dir(run_id)
    return len(list(directory.glob(".*.tmp"))) if directory.is_dir() else 0


def _fill_pending(status: RunStatus, committed: set[str], input_path: str | None, batch_size: int | None,
                  key_column: str | None) -> None:
    manifest = dict(status.manifest or {})
    if input_path:
        manifest["input_path"] = str(Path(input_path).resolve())
    if batch_size:
        manifest["batch_size"] = batch_size
    if key_column:
        manifest["key_column"] = key_column
    if not manifest.get("input_path") or not manifest.get("batch_size"):
        status.pending_unknown_because = "no manifest: give --input FILE and --batch-size N"
        return
    manifest.setdefault("output_dir", status.output_dir)
    manifest.setdefault("run_id", status.run_id)
    manifest.setdefault("action_id", "unknown")
    try:
        spec = spec_from_manifest(manifest)
        names: set[str] = set()
        status.pending = []
        for batch in batches_for(spec):
            names.add(name := part_name(batch))
            if name not in committed:
                status.pending.append(PendingBatch(batch.index, name, batch.first_row, batch.size))
    except ConfigurationError as exc:
        status.pending, status.pending_unknown_because = None, str(exc)
        return
    if committed - names:
        status.notes.append(f"{len(committed - names)} committed part(s) match no batch of the input as it is now "
                            f"(were the input, the batch size or the key column changed?)")
