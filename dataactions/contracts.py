"""The input contract of a data action: turns an input row into the body to POST, or rejects it.

    contract = InputContract.from_action(action)          # the catalog entity, fetched with ?expand=contract
    payload = contract.validate(row, row_key)              # raises RowRejected
    accepted, rejected = contract.validate_batch(batch)    # [(position, payload)], [(position, RowRejected)]
    contract.extra_columns                                  # input columns seen but not sent, to log once

What `validate` does, in order:

1. Keeps only the properties the schema declares. Other input columns are not sent (Genesys would reject or
   ignore them, and they may hold data the action has no business seeing); `extra_columns` lists them.
2. Drops empty values: a None or "" cell is omitted from the body (so a required property reports "is required").
3. Coerces each value to its declared JSON type. CSV gives text, so:

   | declared  | accepts                                                                    |
   |-----------|----------------------------------------------------------------------------|
   | string    | text; integers, decimals, floats and booleans written as JSON text; dates  |
   |           | and datetimes in ISO-8601                                                  |
   | integer   | integers (not booleans); integral floats/decimals; text of digits `-12`    |
   | number    | integers and finite floats/decimals (not booleans); numeric text `1.5e3`   |
   | boolean   | booleans; 0 and 1; text true/false, yes/no, 1/0 (any case)                 |
   | (none)    | any flat value as is (decimals become numbers, dates ISO text)             |

   Objects and arrays are always rejected: Genesys inputs are flat.
4. Validates the body against the compiled JSON Schema (patterns, enums, bounds, required, formats...).
5. Rejects a body whose compact UTF-8 JSON is over 512,000 bytes (Genesys answers 413).

A rejection names the row key, the field and what was expected, never the rejected value (it may be personal data).
Without an input schema, `InputContract.passthrough()` sends every column whose name Genesys allows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import fastjsonschema

from dataactions.errors import ConfigurationError, RowRejected

if TYPE_CHECKING:
    from dataactions.readers import InputBatch

__all__ = [
    "MAX_BODY_BYTES",
    "RESERVED_INPUT_NAMES",
    "InputContract",
    "body_size",
]

MAX_BODY_BYTES = 512_000
RESERVED_INPUT_NAMES = frozenset({"orgId", "integrationId", "rawRequest"})
_INPUT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*\Z")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
_TRUE = frozenset({"true", "yes", "1"})
_BOOLEAN_TEXT = _TRUE | {"false", "no", "0"}
_FLAT = "must be a flat value (string, integer, number, boolean or null): Genesys inputs cannot be objects or arrays"

_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

TCoerce = Callable[[Any], Any]
TValidator = Callable[[dict[str, Any]], Any]


class _Invalid(Exception):
    def __init__(self, expected: str) -> None:
        self.expected = expected


class InputContract:
    """A compiled input contract: which properties to send, how to coerce them, how to check the body."""

    def __init__(self, coercers: dict[str, TCoerce] | None, validator: TValidator | None, name: str = "") -> None:
        self._coercers = list((coercers or {}).items())
        self._declared = frozenset(coercers) if coercers is not None else None
        self._validator = validator
        self.name = name
        self._extra: set[str] = set()
        self._allowed: dict[str, bool] = {}

    @classmethod
    def from_action(cls, action: dict[str, Any]) -> InputContract:
        """Compile the contract of a catalog action entity (`GET .../actions/{id}?expand=contract`)."""
        name = str(action.get("name") or action.get("id") or "action")
        schema = ((action.get("contract") or {}).get("input") or {}).get("inputSchema")
        if not schema:
            return cls.passthrough(name)
        if not isinstance(schema, dict):
            raise ConfigurationError(f"the input schema of {name} is not a JSON object")
        properties = schema.get("properties") or {}
        coercers = {prop: _coercer_for(spec) for prop, spec in properties.items() if isinstance(spec, dict)}
        return cls(coercers, _compile(schema, name), name)

    @classmethod
    def passthrough(cls, name: str = "") -> InputContract:
        """A contract for an action without an input schema: sends every column with an allowed name."""
        return cls(None, None, name)

    @property
    def is_passthrough(self) -> bool:
        """True when the action has no input schema (every allowed column is sent as it is)."""
        return self._declared is None

    @property
    def declared(self) -> tuple[str, ...] | None:
        """The properties the schema declares, or None for a passthrough contract."""
        return None if self._declared is None else tuple(sorted(self._declared))

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Input columns seen so far that are not sent (undeclared, or a name Genesys does not allow)."""
        return tuple(sorted(self._extra))

    def validate(self, row: dict[str, Any], row_key: str) -> dict[str, Any]:
        """The body to send for this row; raises `RowRejected` naming the field and what was expected."""
        try:
            payload = self._payload(row)
            if self._validator is not None:
                self._check_schema(payload)
            _check_size(payload)
        except _FieldInvalid as exc:
            raise RowRejected(row_key, exc.field, exc.expected) from None
        return payload

    def validate_batch(
        self, batch: InputBatch
    ) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, RowRejected]]]:
        """Validate every row of `batch.rows`: (position, payload) pairs and (position, RowRejected) pairs."""
        accepted: list[tuple[int, dict[str, Any]]] = []
        rejected: list[tuple[int, RowRejected]] = []
        validate = self.validate
        for position, (row, key) in enumerate(zip(batch.rows, batch.row_keys)):
            try:
                accepted.append((position, validate(row, key)))
            except RowRejected as exc:
                rejected.append((position, exc))
        return accepted, rejected

    def _payload(self, row: dict[str, Any]) -> dict[str, Any]:
        if self._declared is None:
            return self._passthrough_payload(row)
        if not self._declared.issuperset(row.keys()):
            self._extra.update(row.keys() - self._declared)
        payload: dict[str, Any] = {}
        for name, coerce in self._coercers:
            value = row.get(name)
            if value is None or value == "":
                continue
            try:
                payload[name] = coerce(value)
            except _Invalid as exc:
                raise _FieldInvalid(name, exc.expected) from None
        return payload

    def _passthrough_payload(self, row: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for name, value in row.items():
            if not self._is_allowed(name) or value is None or value == "":
                continue
            try:
                payload[name] = _as_flat(value)
            except _Invalid as exc:
                raise _FieldInvalid(name, exc.expected) from None
        return payload

    def _is_allowed(self, name: str) -> bool:
        allowed = self._allowed.get(name)
        if allowed is None:
            allowed = self._allowed[name] = bool(_INPUT_NAME.match(name)) and name not in RESERVED_INPUT_NAMES
            if not allowed:
                self._extra.add(name)
        return allowed

    def _check_schema(self, payload: dict[str, Any]) -> None:
        try:
            self._validator(payload)  # type: ignore[misc]
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _FieldInvalid(*_describe(exc, payload)) from None


class _FieldInvalid(Exception):
    def __init__(self, field: str | None, expected: str) -> None:
        self.field = field
        self.expected = expected


def body_size(payload: dict[str, Any]) -> int:
    """Bytes of the payload as compact UTF-8 JSON, the size Genesys limits to `MAX_BODY_BYTES`."""
    return len(_compact_json(payload).encode("utf-8", "surrogatepass"))


def _check_size(payload: dict[str, Any]) -> None:
    if _size_bound(payload) <= MAX_BODY_BYTES:
        return
    size = body_size(payload)
    if size > MAX_BODY_BYTES:
        largest = max(payload, key=lambda name: len(str(payload[name])))
        raise _FieldInvalid(
            largest,
            f"makes the JSON body {size:,} bytes; Genesys accepts at most {MAX_BODY_BYTES:,} bytes per request",
        )


def _size_bound(payload: dict[str, Any]) -> int:
    """An upper bound of `body_size`, cheap enough for every row (12 bytes covers any escaped character)."""
    total = 2
    for name, value in payload.items():
        total += 12 * len(name) + 4
        if isinstance(value, str):
            total += 12 * len(value)
        elif isinstance(value, int):
            total += value.bit_length() // 3 + 2
        else:
            total += 32
    return total


def _describe(exc: fastjsonschema.JsonSchemaValueException, payload: dict[str, Any]) -> tuple[str | None, str]:
    """Field and expectation from a fastjsonschema error, in the schema's terms (never the value)."""
    path = exc.path or []
    if exc.rule == "required" and len(path) <= 1:
        missing = [name for name in exc.rule_definition or () if name not in payload]
        return (missing[0] if missing else None), "is required"
    field = str(path[1]) if len(path) > 1 else None
    expected = exc.message.removeprefix(f"{exc.name} ").strip()
    return field, expected if expected.startswith("must") else f"must satisfy the contract's {exc.rule!r} rule"


def _compile(schema: dict[str, Any], name: str) -> TValidator:
    try:
        return fastjsonschema.compile(schema, handlers={"http": _no_fetch, "https": _no_fetch}, use_default=False)
    except Exception as exc:  # definition errors, bad regexes (re.error), a refused $ref...
        raise ConfigurationError(f"the input schema of {name} cannot be compiled: {exc}") from None


def _no_fetch(uri: str) -> Any:
    raise ConfigurationError(f"the input schema refers to {uri}; remote $ref is not supported (nor by Genesys)")


# -- coercion ----------------------------------------------------------------------------------------------------


def _coercer_for(spec: dict[str, Any]) -> TCoerce:
    declared = spec.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    coercers = [_COERCERS[t] for t in types if t in _COERCERS]
    if not coercers:
        return _as_flat
    if len(coercers) == 1:
        return coercers[0]
    return _first_of(coercers)


def _first_of(coercers: list[TCoerce]) -> TCoerce:
    def coerce(value: Any) -> Any:
        for coercer in coercers[:-1]:
            try:
                return coercer(value)
            except _Invalid:
                pass
        return coercers[-1](value)

    return coerce


def _as_string(value: Any) -> str:
    if type(value) is str:
        return _unicode(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    raise _Invalid(_mismatch(value, "must be a string"))


def _as_integer(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and _INTEGER_TEXT.match(value):
        return _int(value)
    if isinstance(value, (float, Decimal)) and _is_integral(value):
        return int(value)
    raise _Invalid(_mismatch(value, "must be an integer (a whole number such as 42)"))


def _as_number(value: Any) -> int | float:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        text = value.strip()
        return _int(text) if _INTEGER_TEXT.match(text) else _finite(float(text))
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if _is_integral(value) else float(value)
    raise _Invalid(_mismatch(value, "must be a number (such as 42 or 1.5)"))


def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and (text := value.strip().lower()) in _BOOLEAN_TEXT:
        return text in _TRUE
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise _Invalid(_mismatch(value, "must be a boolean (true or false)"))


def _as_flat(value: Any) -> Any:
    if type(value) is str:
        return _unicode(value)
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if _is_integral(value) else float(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    raise _Invalid(_mismatch(value, "must be a string, integer, number, boolean or null"))


def _mismatch(value: Any, expected: str) -> str:
    if isinstance(value, (dict, list, tuple)):
        return _FLAT
    if isinstance(value, (bytes, bytearray)):
        return f"{expected}, not binary data"
    if isinstance(value, float):
        return f"{expected}; NaN and infinity are not JSON numbers"
    return expected


def _unicode(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("must be valid Unicode text") from None
    return text


def _is_integral(value: float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return value.is_integer()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (4,300)
        raise _Invalid("must be an integer of at most 4,300 digits") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Invalid("must be a finite number")
    return value


_COERCERS: dict[str, TCoerce] = {
    "string": _as_string,
    "integer": _as_integer,
    "number": _as_number,
    "boolean": _as_boolean,
}
