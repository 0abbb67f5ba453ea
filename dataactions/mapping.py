"""Mapping files: which typed output columns to pull out of each answer, and how.

```yaml
columns:
  customer_id: {path: "$.customer.id", type: string}
  lifetime_value: {path: "$.customer.lifetimeValue", type: number, default: 0}
  since: {path: "$.customer.since", type: timestamp}
  first_account: "$.accounts[0].id"          # shorthand: a path, type string
```

Paths are JSONPath as jsonpath-ng (extended grammar) reads them, and must start with `$`. Each is compiled once:
a *singular* path (only `.name`, `['any name']` and `[n]` steps, n >= 0) gets a plain dict/list walker; any other
path (wildcards, slices, filters, `..`, unions) runs jsonpath-ng's compiled expression and may match several
values (see `normalize` for what happens then). Column types map to Arrow:

    string → string    integer → int64    number → float64    boolean → bool    timestamp → timestamp[us, UTC]

Column names are `[A-Za-z_][A-Za-z0-9_]*` (safe for SQL, pandas and Polars), unique ignoring case, and not one of
the result table's own columns (`RESERVED_COLUMNS`). Every problem is a `ConfigurationError` naming the column.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import pyarrow as pa
import yaml
from jsonpath_ng import jsonpath
from jsonpath_ng.ext import parse as _parse_jsonpath

from dataactions.errors import ConfigurationError
from dataactions.normalize import COLUMN_TYPES, MISSING, ValueMismatch, coerce_value

__all__ = [
    "ARROW_TYPES",
    "MISSING",
    "RESERVED_COLUMNS",
    "MappedColumn",
    "Mapping",
    "Matches",
    "TColumnType",
    "compile_path",
]

TColumnType = Literal["string", "integer", "number", "boolean", "timestamp"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
RESERVED_COLUMNS = frozenset({
    "row_key", "row_number", "status", "error_code", "error_message", "attempts", "run_id", "raw_answer",
    "recorded_at",
})
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SPEC_KEYS = frozenset({"path", "type", "default", "description"})


class Matches(list):  # type: ignore[type-arg]
    """The values a non-singular path matched (possibly none, one or several)."""


TLookup = Callable[[Any], Any]


@dataclass(frozen=True)
class MappedColumn:
    """One output column. `default` is already coerced to the column type (timestamps in epoch microseconds)."""

    name: str
    path: str
    type: TColumnType
    default: Any = None
    has_default: bool = False
    singular: bool = True
    lookup: TLookup = field(default=lambda answer: MISSING, repr=False, compare=False)

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


class Mapping:
    """An ordered set of mapped columns, compiled once per run."""

    def __init__(self, columns: list[MappedColumn] | tuple[MappedColumn, ...] = ()) -> None:
        self.columns: tuple[MappedColumn, ...] = tuple(columns)
        self.schema = pa.schema(self.arrow_fields())

    @classmethod
    def identity(cls) -> Mapping:
        """No mapped columns: results carry the raw answer only."""
        return cls()

    @classmethod
    def load(cls, path: str | Path | None) -> Mapping:
        """Read a YAML mapping file (None gives the identity mapping)."""
        if path is None:
            return cls.identity()
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read mapping file {path}: {exc}") from None
        try:
            document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"mapping file {path} is not valid YAML: {exc}") from None
        return cls.from_dict(document, source=str(path))

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "mapping") -> Mapping:
        """Build from the parsed document: `{"columns": {name: path | {path, type, default}}}`."""
        if not isinstance(document, dict) or not isinstance(document.get("columns", {}), dict):
            raise ConfigurationError(f"{source}: expected a mapping with a 'columns' mapping of name → path")
        unknown = sorted(set(document) - {"columns", "description"})
        if unknown:
            raise ConfigurationError(f"{source}: unknown top-level key(s) {unknown}; expected 'columns'")
        columns = [_column(str(name), spec, source) for name, spec in (document.get("columns") or {}).items()]
        _check_unique(columns, source)
        return cls(columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def is_identity(self) -> bool:
        return not self.columns

    def arrow_fields(self) -> list[pa.Field]:
        return [pa.field(c.name, c.arrow_type) for c in self.columns]

    def digest(self) -> str:
        """SHA-256 (hex) of what the mapping does (names, paths, types, defaults); stable across processes."""
        spec = [[c.name, c.path, c.type, c.has_default, c.default] for c in self.columns]
        text = json.dumps(spec, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    def __repr__(self) -> str:
        return f"Mapping({', '.join(f'{c.name}:{c.type}' for c in self.columns)})"


def _column(name: str, spec: Any, source: str) -> MappedColumn:
    where = f"{source}: column {name!r}"
    _check_name(name, where)
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where}: expected a JSONPath string or {{path, type, default}}")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown}; expected path, type, default")
    column_type = _column_type(spec.get("type", "string"), where)
    path, singular, lookup = compile_path(spec.get("path"), where)
    default = spec.get("default")
    return MappedColumn(name, path, column_type, _default(default, column_type, where), default is not None,
                        singular, lookup)


def _check_name(name: str, where: str) -> None:
    if not _COLUMN_NAME.match(name):
        raise ConfigurationError(f"{where}: a column name must match [A-Za-z_][A-Za-z0-9_]*")
    if name.lower() in RESERVED_COLUMNS:
        raise ConfigurationError(
            f"{where}: the name is reserved for the result table's own columns ({', '.join(sorted(RESERVED_COLUMNS))})"
        )


def _check_unique(columns: list[MappedColumn], source: str) -> None:
    seen: dict[str, str] = {}
    for column in columns:
        other = seen.setdefault(column.name.lower(), column.name)
        if other != column.name:
            raise ConfigurationError(
                f"{source}: columns {other!r} and {column.name!r} differ only in case (SQL engines would clash)"
            )


def _column_type(value: Any, where: str) -> TColumnType:
    if value not in COLUMN_TYPES:
        raise ConfigurationError(f"{where}: unknown type {value!r}; use one of {', '.join(COLUMN_TYPES)}")
    return cast(TColumnType, value)


def _default(value: Any, column_type: str, where: str) -> Any:
    if value is None:
        return None
    try:
        return coerce_value(column_type, value)
    except ValueMismatch as exc:
        raise ConfigurationError(f"{where}: the default does not fit type {column_type}: expected {exc.expected}, "
                                 f"got {exc.got}") from None


def compile_path(path: Any, where: str = "path") -> tuple[str, bool, TLookup]:
    """Parse a JSONPath once: (the path, whether it is singular, a lookup from an answer to its value).

    A singular lookup returns the value or `MISSING`; any other returns the `Matches` list. Paths made only of
    names, non-negative indices and `*` wildcards run as plain dict/list walks; the rest through jsonpath-ng.
    """
    if not isinstance(path, str) or not path.strip().startswith("$"):
        raise ConfigurationError(f"{where}: 'path' must be a JSONPath starting with '$', e.g. \"$.customer.id\"")
    path = path.strip()
    try:
        expression = _parsed(path)
    except Exception as exc:  # jsonpath-ng raises bare Exceptions and lexer errors alike
        raise ConfigurationError(f"{where}: {path!r} is not valid JSONPath: {exc}") from None
    steps = _plain_steps(expression)
    if steps is None:
        return path, False, _expression_lookup(expression)
    if _WILDCARD in steps:
        return path, False, _fan_out_lookup(steps)
    return path, True, _steps_lookup(steps)


@functools.lru_cache(maxsize=512)
def _parsed(path: str) -> Any:
    """jsonpath-ng's parser takes 1-2 ms a path; a process running run after run (a worker, `serve`, the
    benchmarks) parses each path once. Its expressions are only ever read."""
    return _parse_jsonpath(path)


class _Wildcard:
    def __repr__(self) -> str:
        return "*"


_WILDCARD: Any = _Wildcard()
TStep = str | int | _Wildcard


def _plain_steps(node: Any) -> tuple[TStep, ...] | None:
    """The steps of a path made only of Root, single Fields, non-negative Index and Wildcard, else None."""
    if isinstance(node, jsonpath.Root):
        return ()
    if isinstance(node, jsonpath.Child):
        left = _plain_steps(node.left)
        right = _plain_step(node.right)
        return None if left is None or right is None else (*left, right)
    return None


def _plain_step(node: Any) -> TStep | None:
    if type(node) is jsonpath.Fields and len(node.fields) == 1 and node.fields[0] != "*":
        return str(node.fields[0])
    if type(node) is jsonpath.Index:
        indices = getattr(node, "indices", None) or (getattr(node, "index", None),)
        if len(indices) == 1 and isinstance(indices[0], int) and indices[0] >= 0:
            return indices[0]
    if _WILDCARD_NODE is not None and type(node) is _WILDCARD_NODE:
        return _WILDCARD
    return None


_WILDCARD_NODE: type | None = getattr(jsonpath, "Wildcard", None)


def _steps_lookup(steps: tuple[TStep, ...]) -> TLookup:
    if len(steps) <= 2 and all(type(step) is str for step in steps):
        return _keys_lookup(*steps)  # type: ignore[arg-type]

    def lookup(answer: Any) -> Any:
        value = answer
        for step in steps:
            if type(step) is str:
                if not isinstance(value, dict):
                    return MISSING
                value = value.get(step, MISSING)
                if value is MISSING:
                    return MISSING
            elif isinstance(value, list) and step < len(value):  # type: ignore[operator]
                value = value[step]  # type: ignore[index]
            else:
                return MISSING
        return value

    return lookup


def _keys_lookup(*keys: str) -> TLookup:
    """`$`, `$.a` and `$.a.b`, most mapped columns, without a loop: a lookup runs for every cell of a column."""
    if not keys:
        return lambda answer: answer
    if len(keys) == 1:
        (key,) = keys
        return lambda answer: answer.get(key, MISSING) if isinstance(answer, dict) else MISSING
    outer, inner = keys

    def lookup(answer: Any) -> Any:
        parent = answer.get(outer, MISSING) if isinstance(answer, dict) else MISSING
        return parent.get(inner, MISSING) if isinstance(parent, dict) else MISSING

    return lookup


def _fan_out_lookup(steps: tuple[TStep, ...]) -> TLookup:
    """Every value the steps reach, `*` taking all elements of a list or all values of an object."""

    def lookup(answer: Any) -> Matches:
        current = [answer]
        for step in steps:
            reached: list[Any] = []
            for value in current:
                if step is _WILDCARD:
                    if isinstance(value, list):
                        reached.extend(value)
                    elif isinstance(value, dict):
                        reached.extend(value.values())
                elif type(step) is str:
                    if isinstance(value, dict) and step in value:
                        reached.append(value[step])
                elif isinstance(value, list) and step < len(value):  # type: ignore[operator]
                    reached.append(value[step])  # type: ignore[index]
            current = reached
        return Matches(current)

    return lookup


def _expression_lookup(expression: Any) -> TLookup:
    def lookup(answer: Any) -> Matches:
        return Matches(match.value for match in expression.find(answer))

    return lookup


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one mapping (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            if isinstance(key, (str, int, float, bool)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)
