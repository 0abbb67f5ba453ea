"""Turn a batch of answers into typed columns, following a mapping; one bad value never sinks the batch.

    normalized = normalize_batch(mapping, answers)     # answers: list[dict | None], None for rows with no answer
    normalized.table                                   # pa.Table with exactly mapping.schema, one row per answer
    normalized.errors                                  # per row: None, or what did not fit ("column 'x' ...")

Per cell: the path's value is looked up; a missing value or JSON null gives the column's default when it has
one, else null; a value that does not fit the type gives null and an error for that row naming the column, the
path, the expected type and the kind of value found (never the value itself). A None answer gives nulls and no
error (its row failed or was rejected; the status says why).

Coercions:

| type      | accepts                                                            | rejects (row error)                |
|-----------|--------------------------------------------------------------------|------------------------------------|
| string    | text; numbers and booleans as their JSON text (`42`, `1.5`, `true`) | objects, arrays                    |
| integer   | integers; integral floats (`3.0`); text of digits (`"-12"`)        | booleans, fractions, other text,   |
|           |                                                                    | values outside int64               |
| number    | integers and floats; numeric text (`"1.5e3"`)                      | booleans, other text               |
| boolean   | booleans; text `"true"` / `"false"` (any case)                      | numbers, other text                |
| timestamp | ISO-8601 text (`Z` or an offset; without one it is taken as UTC;    | booleans, other text, years        |
|           | a date alone is midnight UTC); epoch milliseconds (int or float)    | outside 1..9999                    |

Several matches: a singular path (`$.a.b`, `$.a[0]`, `$['a b']`) yields one value or none. Any other path
(`[*]`, slices, filters, `..`) may match several values: a string column then always holds the JSON array of all
matches (`["A1","A2"]`, even for a single match, so the column's meaning does not depend on the count); any other
type takes the value when exactly one matched, and reports an error when several did.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dataactions._text import is_unicode

if TYPE_CHECKING:
    from dataactions.mapping import MappedColumn, Mapping

__all__ = [
    "COLUMN_TYPES",
    "MISSING",
    "NormalizedBatch",
    "ValueMismatch",
    "coerce_value",
    "normalize_batch",
    "raw_answer_json",
]

COLUMN_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "timestamp")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _ONE_US
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d{1,19}\s*\Z")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_to_ascii_json = json.JSONEncoder(separators=(",", ":"), default=str).encode
_EXPECTED = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "timestamp": "an ISO-8601 timestamp or epoch milliseconds",
}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What a path lookup returns when nothing is there (JSON null is returned as None)."""


class ValueMismatch(ValueError):
    """A value that does not fit a column type: what was expected and what kind of value came."""

    def __init__(self, column_type: str, got: str) -> None:
        self.expected = _EXPECTED[column_type]
        self.got = got
        super().__init__(f"expected {self.expected}, got {got}")


@dataclass(frozen=True)
class NormalizedBatch:
    """Typed columns for a batch of answers (`table`, schema = the mapping's) and per-row errors."""

    table: pa.Table
    errors: list[str | None]

    @property
    def columns(self) -> dict[str, list[Any]]:
        return self.table.to_pydict()

    @property
    def error_count(self) -> int:
        return sum(error is not None for error in self.errors)


def normalize_batch(mapping: Mapping, answers: Sequence[Any]) -> NormalizedBatch:
    """Apply the mapping to every answer; one output row per answer, in order."""
    problems: list[list[str] | None] = [None] * len(answers)
    arrays = [_column_array(column, answers, problems) for column in mapping.columns]
    if arrays:
        table = pa.Table.from_arrays(arrays, schema=mapping.schema)
    else:
        table = pa.table({"_": pa.nulls(len(answers))}).drop_columns(["_"])
    errors = [None if found is None else "; ".join(found) for found in problems]
    return NormalizedBatch(table, errors)


def coerce_value(column_type: str, value: Any) -> Any:
    """`value` as the column type's Python value (timestamps: epoch microseconds); raises ValueMismatch."""
    return _COERCERS[column_type](value)


def raw_answer_json(answer: Any) -> str | None:
    """Compact JSON text of an answer (None stays None); non-ASCII kept readable unless it is not valid Unicode."""
    if answer is None:
        return None
    text = _to_json(answer)
    if text.isascii() or is_unicode(text):
        return text
    return _to_ascii_json(answer)


def _column_array(column: MappedColumn, answers: Sequence[Any], problems: list[list[str] | None]) -> pa.Array:
    values = _column_values(column, answers, problems)
    try:
        return pa.array(values, type=column.arrow_type)
    except (pa.ArrowException, UnicodeEncodeError, OverflowError, TypeError, ValueError):
        return _checked_array(column, values, problems)


def _column_values(column: MappedColumn, answers: Sequence[Any], problems: list[list[str] | None]) -> list[Any]:
    coerce, lookup, default, singular = _COERCERS[column.type], column.lookup, column.default, column.singular
    values: list[Any] = []
    append = values.append
    for position, answer in enumerate(answers):
        if answer is None:
            append(None)
            continue
        try:
            value = lookup(answer) if singular else _one_match(column, lookup(answer))
            append(default if value is None or value is MISSING else coerce(value))
        except ValueMismatch as exc:
            append(None)
            _note(problems, position, f"column {column.name!r} ({column.path}): {exc}")
        except Exception as exc:  # a jsonpath-ng expression failing on an odd answer
            append(None)
            _note(problems, position, f"column {column.name!r} ({column.path}): cannot evaluate the path "
                                      f"({type(exc).__name__})")
    return values


def _one_match(column: MappedColumn, matches: list[Any]) -> Any:
    if not matches:
        return MISSING
    if column.type == "string":
        return raw_answer_json(matches)
    if len(matches) > 1:
        raise ValueMismatch(column.type, f"{len(matches)} matching values (only a string column keeps several)")
    return matches[0]


def _checked_array(column: MappedColumn, values: list[Any], problems: list[list[str] | None]) -> pa.Array:
    """Slow path, only when Arrow refused the column: null out the cells it refuses, with an error each."""
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            pa.array([value], type=column.arrow_type)
        except (pa.ArrowException, UnicodeEncodeError, OverflowError, TypeError, ValueError):
            values[position] = None
            _note(problems, position, f"column {column.name!r} ({column.path}): expected "
                                      f"{_EXPECTED[column.type]}, got a value Arrow cannot store "
                                      f"(e.g. text that is not valid Unicode)")
    return pa.array(values, type=column.arrow_type)


def _note(problems: list[list[str] | None], position: int, message: str) -> None:
    found = problems[position]
    if found is None:
        problems[position] = [message]
    else:
        found.append(message)


# -- coercers ----------------------------------------------------------------------------------------------------


def _to_string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        try:
            return json.dumps(value)
        except ValueError:  # an int of more than 4,300 digits
            raise ValueMismatch("string", "a number too long to write as text") from None
    raise ValueMismatch("string", _kind(value))


def _to_integer(value: Any) -> int:
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise ValueMismatch("integer", "a number outside the int64 range")
    if type(value) is float:
        if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        raise ValueMismatch("integer", "a number with a fraction" if math.isfinite(value) else "a non-finite number")
    if isinstance(value, str) and _INTEGER_TEXT.match(value):
        return _to_integer(int(value))
    raise ValueMismatch("integer", _kind(value, "an integer"))


def _to_number(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise ValueMismatch("number", "a number outside the float64 range") from None
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        return _to_number(float(value))
    raise ValueMismatch("number", _kind(value, "a number"))


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueMismatch("boolean", _kind(value, "true or false"))


def _to_timestamp(value: Any) -> int:
    """Epoch microseconds."""
    if isinstance(value, str):
        return _micros(_parse_iso(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _checked_micros(round(value * 1000) if math.isfinite(value) else _MAX_US + 1)
    if isinstance(value, datetime):
        return _micros(value)
    if isinstance(value, date):
        return _micros(datetime(value.year, value.month, value.day))
    raise ValueMismatch("timestamp", _kind(value))


def _parse_iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueMismatch("timestamp", "text that is not an ISO-8601 timestamp") from None


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // _ONE_US
    if _MIN_US <= micros <= _MAX_US:
        return micros
    raise ValueMismatch("timestamp", "a time outside the years 1..9999 in UTC")


def _checked_micros(micros: int) -> int:
    if _MIN_US <= micros <= _MAX_US:
        return micros
    raise ValueMismatch("timestamp", "epoch milliseconds outside the years 1..9999")


def _kind(value: Any, wanted: str = "") -> str:
    if isinstance(value, str):
        return f"text that is not {wanted}" if wanted else "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


_COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "timestamp": _to_timestamp,
}
