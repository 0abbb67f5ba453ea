"""Stream input rows from CSV, Parquet or JSONL files in fixed-size, deterministic batches.

    for batch in iter_batches("customers.csv", 500, key_column="customerId"):
        batch.rows, batch.row_keys, batch.row_numbers      # rows to validate and send
        batch.rejected                                     # [(row number, RowRejected)]: broken rows, never sent

Rules every format follows:

- Row numbers are 1-based and count data rows: a CSV header is not a row, and blank lines are not rows.
- Batch `i` holds exactly the input rows `i * batch_size + 1 ..` up to `batch_size` of them; each row is in `rows`
  or in `rejected`, never both and never neither. The same file and batch size give the same batches in every
  process (resume relies on it), and `InputBatch.digest()` fingerprints one.
- CSV: values are strings as written, an empty cell is None. A line with more or fewer fields than the header,
  or with bytes that are not UTF-8, is rejected (the message names the row, and the field or the expected width).
  Cells may be up to 64 MiB (the process-wide `csv.field_size_limit` is raised to that): a large cell the action
  does not take is simply not sent, one it does take is rejected by the contract's 512,000-byte body limit.
- Parquet: values keep their native types (ints, floats, datetimes, Decimals, ...).
- JSONL: one JSON object per line; a line that is not valid JSON, or not an object, is rejected with the reason.
- Row key: the value of `key_column` (a missing column is a `ConfigurationError` before any batch; an empty key
  rejects the row), else the row number as text. A rejected row whose key cannot be read is keyed `#<row number>`.
- Duplicate keys: the first row with a key keeps it, later rows with the same key are rejected
  ("duplicate key: same key as row N"). Only a 64-bit BLAKE2b digest of each key is kept, with its row number,
  in sorted numpy arrays: about 16 bytes per distinct key (16 MB per million rows) instead of the keys
  themselves. Two different keys share a digest with probability about n²/2⁶⁵ (3·10⁻⁶ for ten million rows);
  it is deterministic, so such a rare false duplicate is at least the same on every run.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow.parquet as pq

from dataactions._text import is_unicode
from dataactions.errors import ConfigurationError, RowRejected

__all__ = [
    "FORMATS",
    "InputBatch",
    "TRow",
    "count_rows",
    "detect_format",
    "iter_batches",
]

TRow = dict[str, Any]
TProblem = tuple[str | None, str]
"""A file-format problem of one row: the field it is in (None for the whole row) and what was expected."""
_Event = tuple[TRow | None, TProblem | None]

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class InputBatch:
    """One batch of consecutive input rows.

    Rows accepted at the file level are in `rows` (with `row_keys` and `row_numbers` at the same positions);
    rows broken at the file level are in `rejected` as (row number, RowRejected) pairs. Together they cover the
    row numbers `first_row .. last_row` exactly once, each list in row order. Batches pickle (Prefect may).
    """

    index: int
    first_row: int
    rows: list[TRow]
    row_keys: list[str]
    row_numbers: list[int]
    rejected: list[tuple[int, RowRejected]]

    @property
    def rejected_row_numbers(self) -> list[int]:
        return [number for number, _ in self.rejected]

    @property
    def size(self) -> int:
        """Number of input rows in the batch, rejected ones included."""
        return len(self.rows) + len(self.rejected)

    @property
    def last_row(self) -> int:
        return self.first_row + self.size - 1

    def digest(self) -> str:
        """SHA-256 (hex) of the batch content: keys, row numbers, canonical rows and rejections.

        Computed once (a batch is not changed after it is built; the part name, the cache key and the flow all
        ask for it)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            content = [self.index, self.first_row, self.row_numbers, self.row_keys, self.rows, _plain(self.rejected)]
            text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_json_default)
            cached = hashlib.sha256(text.encode("ascii")).hexdigest()
            object.__setattr__(self, "_digest", cached)  # frozen dataclass: not a field, not pickled
        return cached

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.index, self.first_row, self.rows, self.row_keys, self.row_numbers, _plain(self.rejected))
        return _rebuild_batch, fields


def _plain(rejected: list[tuple[int, RowRejected]]) -> list[tuple[int, str, str | None, str]]:
    return [(number, error.row_key, error.field_name, error.expected) for number, error in rejected]


def _rebuild_batch(index: int, first_row: int, rows: list[TRow], row_keys: list[str], row_numbers: list[int],
                   rejected: list[tuple[int, str, str | None, str]]) -> InputBatch:
    errors = [(number, RowRejected(key, field, expected)) for number, key, field, expected in rejected]
    return InputBatch(index, first_row, rows, row_keys, row_numbers, errors)


def detect_format(path: str | Path, file_format: str | None = None) -> str:
    """'csv', 'parquet' or 'jsonl', from `file_format` when given, else from the file extension."""
    if file_format is not None:
        fmt = FORMATS.get("." + file_format.lower().lstrip("."))
        if fmt is None:
            raise ConfigurationError(f"unknown input format {file_format!r}; use csv, parquet or jsonl")
        return fmt
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigurationError(
            f"cannot tell the format of {path} from its extension; "
            f"use one of {', '.join(sorted(FORMATS))} or pass file_format"
        )
    return fmt


def iter_batches(
    path: str | Path,
    batch_size: int,
    *,
    key_column: str | None = None,
    file_format: str | None = None,
) -> Iterator[InputBatch]:
    """Stream the file as `InputBatch`es of `batch_size` input rows (the last may be shorter).

    The file, its format, its header and `key_column` are checked before this returns, so a bad input
    raises `ConfigurationError` here rather than at the first batch. An empty file yields no batch.
    """
    if batch_size < 1:
        raise ConfigurationError(f"batch size must be at least 1, got {batch_size}")
    path = Path(path)
    fmt = detect_format(path, file_format)
    if not path.is_file():
        raise ConfigurationError(f"input file not found: {path}")
    _check_key_column(path, fmt, key_column)
    return _Batcher(key_column, batch_size).batches(_EVENTS[fmt](path))


def count_rows(path: str | Path, *, file_format: str | None = None) -> int:
    """Number of input rows in the file, counted the way `iter_batches` numbers them."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    if fmt == "jsonl":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    with _open_csv(path) as f:
        return max(0, sum(1 for _ in _csv_records(f)) - 1)


# -- batching ----------------------------------------------------------------------------------------------------


class _Batcher:
    """Turns a stream of per-row events into numbered, keyed, de-duplicated batches."""

    def __init__(self, key_column: str | None, batch_size: int) -> None:
        self._key_column = key_column
        self._batch_size = batch_size
        self._seen = _SeenKeys()
        self._next_row = 1

    def batches(self, events: Iterator[_Event]) -> Iterator[InputBatch]:
        index = 0
        while chunk := list(islice(events, self._batch_size)):
            yield self._build(index, chunk)
            index += 1

    def _build(self, index: int, chunk: list[_Event]) -> InputBatch:
        first_row = self._next_row
        self._next_row += len(chunk)
        keys, problems = self._keys(chunk, first_row)
        batch = InputBatch(index, first_row, [], [], [], [])
        for offset, ((row, _), key, problem) in enumerate(zip(chunk, keys, problems)):
            row_number = first_row + offset
            if problem is None:
                batch.rows.append(row)  # type: ignore[arg-type]
                batch.row_keys.append(key)
                batch.row_numbers.append(row_number)
            else:
                batch.rejected.append((row_number, RowRejected(key, *problem)))
        return batch

    def _keys(self, chunk: list[_Event], first_row: int) -> tuple[list[str], list[TProblem | None]]:
        if self._key_column is None:
            return [str(first_row + i) for i in range(len(chunk))], [problem for _, problem in chunk]
        keys: list[str] = []
        problems: list[TProblem | None] = []
        for offset, (row, problem) in enumerate(chunk):
            key, key_problem = self._key_of(row, problem, first_row + offset)
            keys.append(key)
            problems.append(problem or key_problem)
        self._reject_duplicates(keys, problems, first_row)
        return keys, problems

    def _key_of(self, row: TRow | None, problem: TProblem | None, row_number: int) -> tuple[str, TProblem | None]:
        column = self._key_column
        assert column is not None
        if row is None or (problem is not None and problem[0] == column):
            return f"#{row_number}", None
        key, expected = _key_text(row.get(column))
        if key is None:
            return f"#{row_number}", (column, expected)
        return key, None

    def _reject_duplicates(self, keys: list[str], problems: list[TProblem | None], first_row: int) -> None:
        positions = [i for i, problem in enumerate(problems) if problem is None]
        earlier = self._seen.first_rows([keys[i] for i in positions], [first_row + i for i in positions])
        for position, first in zip(positions, earlier):
            if first is not None:
                problems[position] = (self._key_column, f"duplicate key: same key as row {first}")


def _key_text(value: Any) -> tuple[str | None, str]:
    """The key as text, or None and why it cannot be a key."""
    if isinstance(value, (dict, list, tuple, bytes)):
        return None, "must be a single text or number value to serve as the row key"
    if isinstance(value, bool):
        return ("true" if value else "false"), ""
    text = value.isoformat() if isinstance(value, (date, time)) else "" if value is None else str(value)
    if not text.strip():
        return None, "is empty; every row needs a key"
    if not (text.isascii() or is_unicode(text)):
        return None, "is not valid UTF-8 text"
    return text, ""


class _SeenKeys:
    """First row number of every key seen, by 64-bit BLAKE2b digest.

    New digests collect in a small dict; every `_BUFFER` of them settle into sorted numpy arrays (16 bytes per
    key), merged like a binary counter so that a lookup searches only O(log n) arrays, vectorised per batch.
    """

    _BUFFER = 1 << 16

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._levels: list[tuple[np.ndarray, np.ndarray]] = []

    def first_rows(self, keys: list[str], row_numbers: list[int]) -> list[int | None]:
        """For each key: the row that first had it, or None when new (it is then recorded at its row)."""
        digests = _digests(keys)
        settled = self._settled_rows(digests)
        recent = self._recent
        earlier: list[int | None] = []
        for digest, row_number, prior in zip(digests.tolist(), row_numbers, settled):
            prior = prior or recent.setdefault(digest, row_number)
            earlier.append(None if prior == row_number else prior)
        if len(recent) >= self._BUFFER:
            self._settle()
        return earlier

    def _settled_rows(self, digests: np.ndarray) -> list[int]:
        found = np.zeros(len(digests), dtype=np.int64)
        for hashes, rows in self._levels:
            at = np.minimum(np.searchsorted(hashes, digests), len(hashes) - 1)
            found = np.where(hashes[at] == digests, rows[at], found)
        return found.tolist()

    def _settle(self) -> None:
        hashes = np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))
        rows = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        self._recent = {}
        self._levels.append(_sorted_pair(hashes, rows))
        while len(self._levels) > 1 and len(self._levels[-2][0]) <= 2 * len(self._levels[-1][0]):
            (h2, r2), (h1, r1) = self._levels.pop(), self._levels.pop()
            self._levels.append(_sorted_pair(np.concatenate([h1, h2]), np.concatenate([r1, r2])))


def _digests(keys: list[str]) -> np.ndarray:
    blake2b = hashlib.blake2b
    joined = b"".join(blake2b(k.encode("utf-8"), digest_size=8).digest() for k in keys)
    return np.frombuffer(joined, dtype="<u8")


def _sorted_pair(hashes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(hashes, kind="stable")
    return hashes[order], rows[order]


# -- key column check --------------------------------------------------------------------------------------------


def _check_key_column(path: Path, fmt: str, key_column: str | None) -> None:
    columns = _COLUMNS[fmt](path)
    if key_column is None or columns is None or key_column in columns:
        return
    found = ", ".join(repr(c) for c in columns) or "none"
    raise ConfigurationError(f"key column {key_column!r} is not in {path}; columns found: {found}")


def _parquet_columns(path: Path) -> list[str]:
    try:
        return pq.ParquetFile(path).schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ConfigurationError(f"cannot read {path} as Parquet: {exc}") from None


def _jsonl_columns(path: Path) -> list[str] | None:
    """Keys of the first JSON object in the file (None when there is none to judge by)."""
    for row, problem in _jsonl_events(path):
        if problem is None:
            return list(row or ())
    return None


def _csv_columns(path: Path) -> list[str] | None:
    with _open_csv(path) as f:
        return _csv_header(next(_csv_records(f), None), path)


# -- CSV ---------------------------------------------------------------------------------------------------------


_CSV_FIELD_LIMIT = 64 << 20


def _open_csv(path: Path) -> TextIO:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_records(f: Iterable[str]) -> Iterator[list[str] | csv.Error]:
    """Non-blank CSV records; a record the csv module cannot parse comes out as its `csv.Error`."""
    reader = csv.reader(f)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc
            continue
        if record:
            yield record


def _csv_header(record: list[str] | csv.Error | None, path: Path) -> list[str] | None:
    if record is None:
        return None
    if isinstance(record, csv.Error):
        raise ConfigurationError(f"the header of {path} is not valid CSV: {record}")
    if not is_unicode("".join(record)):
        raise ConfigurationError(f"the header of {path} is not valid UTF-8")
    duplicates = sorted({name for name in record if record.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"the header of {path} repeats column(s) {', '.join(map(repr, duplicates))}")
    return record


def _csv_events(path: Path) -> Iterator[_Event]:
    with _open_csv(path) as f:
        records = _csv_records(f)
        header = _csv_header(next(records, None), path)
        if header is None:
            return
        width = len(header)
        for record in records:
            yield _csv_event(header, width, record)


def _csv_event(header: list[str], width: int, record: list[str] | csv.Error) -> _Event:
    if isinstance(record, csv.Error):
        return None, (None, f"is not valid CSV: {record}")
    if len(record) != width:
        return None, (None, f"has {len(record)} fields; expected {width}, as many as the header has columns")
    row = dict(zip(header, [value or None for value in record]))
    joined = "".join(record)
    if joined.isascii() or is_unicode(joined):
        return row, None
    field = next(name for name, value in zip(header, record) if not is_unicode(value))
    return row, (field, "is not valid UTF-8 text")


# -- Parquet -----------------------------------------------------------------------------------------------------

_PARQUET_READ_ROWS = 8192


def _parquet_events(path: Path) -> Iterator[_Event]:
    parquet = pq.ParquetFile(path)
    try:
        for record_batch in parquet.iter_batches(batch_size=_PARQUET_READ_ROWS):
            for row in record_batch.to_pylist():
                yield row, None
    finally:
        parquet.close()


# -- JSONL -------------------------------------------------------------------------------------------------------


def _jsonl_events(path: Path) -> Iterator[_Event]:
    with path.open("rb") as f:
        for number, line in enumerate(f):
            if number == 0:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if line.strip():
                yield _jsonl_event(line)


def _jsonl_event(line: bytes) -> _Event:
    try:
        value = json.loads(line)
    except UnicodeDecodeError as exc:
        return None, (None, f"is not valid UTF-8 (byte {exc.start + 1} of the line)")
    except json.JSONDecodeError as exc:
        return None, (None, f"is not valid JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return None, (None, f"is not usable JSON: {type(exc).__name__}")
    if not isinstance(value, dict):
        return None, (None, f"must be a JSON object, not {_json_kind(value)}")
    return value, None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return f"{type(value).__name__}:{value}"


_EVENTS = {"csv": _csv_events, "parquet": _parquet_events, "jsonl": _jsonl_events}
_COLUMNS = {"csv": _csv_columns, "parquet": _parquet_columns, "jsonl": _jsonl_columns}
