"""Atomic Parquet parts in hive-partitioned datasets, and the results table.

    store = PartStore(out, "results", schema=results_schema(mapping))
    store.sweep_temporaries(run_id)                  # leftovers of a killed writer
    if not store.exists(run_id, "part-000042"):
        store.write(run_id, "part-000042", table)    # → out/results/run_id=<run_id>/part-000042.parquet

A part is written to a hidden temporary file in its final directory (`.part-000042.<random>.tmp`: pyarrow,
pandas and DuckDB's `*.parquet` globs all skip it), flushed and fsynced, renamed over the final name with
`os.replace`, and the directory fsynced: a reader sees the whole part or nothing, and a committed part survives
a crash. `run_id` is not a column of the files: it lives only in the `run_id=<id>` directory, and readers add it:

    pyarrow.dataset.dataset(out / "results", partitioning="hive")
    pandas.read_parquet(out / "results")                              # run_id comes back as a category
    duckdb: SELECT * FROM read_parquet('out/results/**/*.parquet', hive_partitioning = true)

Run ids are `[A-Za-z0-9][A-Za-z0-9._-]*` and must not look like a number or a date, because pyarrow and DuckDB
infer partition value types (`run_id=20240501` would come back as an integer); `new_run_id()` makes good ones.
Every part is compressed with zstd (less than half the size of snappy here), and dictionary-encodes every column
except those whose values differ from row to row (`PER_ROW_COLUMNS`, where a dictionary only costs time and
space). With a `schema`, every part written has exactly that schema.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from dataactions.errors import ConfigurationError

if TYPE_CHECKING:
    from dataactions.mapping import Mapping

__all__ = [
    "COMPRESSION",
    "PER_ROW_COLUMNS",
    "RESULT_STATUSES",
    "PartStore",
    "build_results_table",
    "new_run_id",
    "results_schema",
    "table_from_columns",
    "validate_run_id",
]

COMPRESSION = "zstd"
PER_ROW_COLUMNS = frozenset({"row_key", "row_number", "raw_answer", "recorded_at", "input_hmac", "duration_ms",
                             "correlation_id"})
"""Columns of the results and audit parts that are distinct in (nearly) every row: written without a dictionary."""
RESULT_STATUSES = frozenset({"succeeded", "failed", "rejected"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_UTC_MICROS = pa.timestamp("us", tz="UTC")
_RESULT_HEAD = [
    pa.field("row_key", pa.string()),
    pa.field("row_number", pa.int64()),
    pa.field("status", pa.string()),
    pa.field("error_code", pa.string()),
    pa.field("error_message", pa.string()),
    pa.field("attempts", pa.int32()),
]
_RESULT_TAIL = [pa.field("raw_answer", pa.string()), pa.field("recorded_at", _UTC_MICROS)]


def validate_run_id(run_id: str) -> str:
    """The run id, if it is safe as a directory name and reads back as text; else ConfigurationError."""
    if not isinstance(run_id, str) or not _NAME.match(run_id):
        raise ConfigurationError(f"run id {run_id!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
    if _looks_typed(run_id):
        raise ConfigurationError(
            f"run id {run_id!r} looks like a number or a date, and pandas/DuckDB would read it back as one "
            f"from the run_id=... directory; use a name such as 'run-{run_id}'"
        )
    return run_id


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id such as `run-20260514T101500Z-3fa2c1`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def results_schema(mapping: Mapping) -> pa.Schema:
    """row_key, row_number, status, error_code, error_message, attempts, <mapped columns>, raw_answer, recorded_at."""
    return pa.schema([*_RESULT_HEAD, *mapping.arrow_fields(), *_RESULT_TAIL])


def build_results_table(
    mapping: Mapping,
    *,
    row_key: Sequence[str] | pa.Array,
    row_number: Sequence[int],
    status: Sequence[str] | pa.Array,
    attempts: Sequence[int] | pa.Array | int,
    error_code: Sequence[str | None] | None = None,
    error_message: Sequence[str | None] | None = None,
    mapped: pa.Table | None = None,
    raw_answer: Sequence[str | bytes | None] | None = None,
    recorded_at: datetime | Sequence[datetime] | pa.Array | None = None,
) -> pa.Table:
    """A results part; each keyword is a column, given as a per-row list or Arrow array (a scalar is repeated,
    None is nulls).

    `mapped` is `normalize_batch(...).table`, aligned with the rows (None answers for failed/rejected rows);
    `raw_answer` holds JSON text (bytes must be UTF-8); `recorded_at` None means now.
    """
    unknown = set(status.unique().to_pylist() if isinstance(status, pa.Array) else status) - RESULT_STATUSES
    if unknown:
        raise ValueError(f"unknown status(es) {sorted(unknown)}; use {sorted(RESULT_STATUSES)}")
    columns: dict[str, Any] = {
        "row_key": row_key, "row_number": row_number, "status": status, "error_code": error_code,
        "error_message": error_message, "attempts": attempts, "raw_answer": raw_answer,
        "recorded_at": datetime.now(UTC) if recorded_at is None else recorded_at,
    }
    if mapped is not None:
        columns.update({name: mapped.column(name) for name in mapping.names})
    return table_from_columns(results_schema(mapping), columns, len(row_key))


def table_from_columns(schema: pa.Schema, columns: dict[str, Any], num_rows: int) -> pa.Table:
    """A table with exactly `schema`: each column a sequence, an Arrow array, a scalar to repeat, or None."""
    extra = set(columns) - set(schema.names)
    if extra:
        raise ValueError(f"column(s) {sorted(extra)} are not in the schema")
    arrays = [_array(columns.get(f.name), f, num_rows) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _array(values: Any, field: pa.Field, num_rows: int) -> pa.Array | pa.ChunkedArray:
    if values is None:
        return pa.nulls(num_rows, field.type)
    if isinstance(values, (str, bytes, int, float, datetime)):
        return pa.repeat(pa.scalar(values, type=field.type), num_rows)
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=field.type)
    if len(array) != num_rows:
        raise ValueError(f"column {field.name!r} has {len(array)} values; expected {num_rows}")
    return array if array.type == field.type else array.cast(field.type)


class PartStore:
    """The parts of one dataset (e.g. "results" or "audit") under `root`, one directory per run."""

    def __init__(self, root: str | Path, dataset: str, schema: pa.Schema | None = None) -> None:
        if not _NAME.match(dataset):
            raise ConfigurationError(f"dataset name {dataset!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
        self.root = Path(root)
        self.name = dataset
        self.schema = schema

    @property
    def path(self) -> Path:
        return self.root / self.name

    def run_dir(self, run_id: str) -> Path:
        return self.path / f"run_id={validate_run_id(run_id)}"

    def part_path(self, run_id: str, part_name: str) -> Path:
        if not _NAME.match(part_name):
            raise ConfigurationError(f"part name {part_name!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
        return self.run_dir(run_id) / f"{part_name}.parquet"

    def write(self, run_id: str, part_name: str, table: pa.Table) -> Path:
        """Commit `table` as the part atomically (replacing an earlier version of it); returns its path."""
        final = self.part_path(run_id, part_name)
        table = self._conformed(table)
        self._make_dir(final.parent)
        temporary = final.parent / f".{part_name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            with temporary.open("wb") as f:
                pq.write_table(table, f, compression=COMPRESSION,
                               use_dictionary=[n for n in table.column_names if n not in PER_ROW_COLUMNS])
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return final

    def exists(self, run_id: str, part_name: str) -> bool:
        return self.part_path(run_id, part_name).is_file()

    def parts(self, run_id: str) -> set[str]:
        """Names of the committed parts of a run."""
        directory = self.run_dir(run_id)
        if not directory.is_dir():
            return set()
        return {p.stem for p in directory.glob("*.parquet") if not p.name.startswith((".", "_"))}

    def runs(self) -> set[str]:
        if not self.path.is_dir():
            return set()
        return {p.name.removeprefix("run_id=") for p in self.path.glob("run_id=*") if p.is_dir()}

    def read_part(self, run_id: str, part_name: str, columns: list[str] | None = None) -> pa.Table:
        """One committed part (optionally only some columns)."""
        return pq.read_table(self.part_path(run_id, part_name), columns=columns)

    def read(self, run_id: str) -> pa.Table:
        """All committed parts of a run, in part-name order, without the run_id column."""
        files = [str(self.part_path(run_id, name)) for name in sorted(self.parts(run_id))]
        if not files:
            return (self.schema or pa.schema([])).empty_table()
        return ds.dataset(files, format="parquet", schema=self.schema).to_table()

    def dataset(self) -> ds.Dataset:
        """Every run's parts as one pyarrow dataset, with `run_id` (a string) from the directory names."""
        partitioning = ds.partitioning(pa.schema([pa.field("run_id", pa.string())]), flavor="hive")
        schema = None if self.schema is None else self.schema.append(pa.field("run_id", pa.string()))
        return ds.dataset(self.path, format="parquet", partitioning=partitioning, schema=schema)

    def sweep_temporaries(self, run_id: str) -> int:
        """Delete temporary files a killed writer left in the run's directory; returns how many."""
        directory = self.run_dir(run_id)
        stale = list(directory.glob(".*.tmp")) if directory.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def _conformed(self, table: pa.Table) -> pa.Table:
        if "run_id" in table.column_names:
            raise ValueError("a part must not carry a run_id column: the run id lives in the directory name")
        if self.schema is None or table.schema.equals(self.schema, check_metadata=False):
            return table
        if table.schema.names != self.schema.names:
            raise ValueError(f"part columns {table.schema.names} differ from the dataset's {self.schema.names}")
        return table.cast(self.schema)

    def _make_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_dir(directory.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _looks_typed(run_id: str) -> bool:
    try:
        float(run_id)
        return True
    except ValueError:
        pass
    try:
        datetime.fromisoformat(run_id)
        return True
    except ValueError:
        return False
