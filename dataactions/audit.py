"""Audit rows: what was sent and what came back, provable without keeping the inputs.

An audit row carries `input_hmac`, the HMAC-SHA256 of the row's canonical input under the audit key, never the
input itself. Whoever holds the key and a candidate input can check that this exact input was sent
(`input_hmac(key, inputs) == row.input_hmac`); whoever reads the Parquet without the key learns nothing of it.

    hasher = InputHasher(key)                    # keyed once per run
    hmacs = hasher.hexdigests(payloads)          # one hex string per payload
    store = PartStore(out, "audit", schema=AUDIT_SCHEMA)
    store.write(run_id, part_name, build_audit_table(...))

Canonical input: JSON with sorted keys, compact separators, UTF-8 (non-ASCII characters as themselves), so the
same inputs always give the same bytes whatever their order in the file. Values JSON lacks, found in raw rows
read from Parquet, get a fixed text form (dates ISO-8601, Decimals as written, bytes as hex).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any

import pyarrow as pa

from dataactions.errors import ConfigurationError
from dataactions.sink import table_from_columns

__all__ = [
    "AUDIT_SCHEMA",
    "InputHasher",
    "build_audit_table",
    "canonical_input",
    "input_hmac",
]



def _canonical_default(value: Any) -> Any:
    """Non-JSON values a raw input row may hold (Parquet): a fixed text form, so the digest stays deterministic."""
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                   default=_canonical_default).encode

AUDIT_SCHEMA = pa.schema([
    pa.field("row_key", pa.string()),
    pa.field("action_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("input_hmac", pa.string()),
    pa.field("http_status", pa.int32()),
    pa.field("attempts", pa.int32()),
    pa.field("duration_ms", pa.float64()),
    pa.field("correlation_id", pa.string()),
    pa.field("recorded_at", pa.timestamp("us", tz="UTC")),
])


def canonical_input(inputs: dict[str, Any]) -> bytes:
    """The inputs as canonical JSON bytes: sorted keys, compact separators, UTF-8."""
    return _canonical_json(inputs).encode("utf-8", "surrogatepass")


class InputHasher:
    """HMAC-SHA256 of canonical inputs under one key, keyed once (each digest copies the keyed state)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ConfigurationError("the audit HMAC key is empty; set DATAACTIONS_AUDIT_KEY")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hexdigest(self, inputs: dict[str, Any]) -> str:
        return self.hexdigest_of(canonical_input(inputs))

    def hexdigest_of(self, canonical: bytes) -> str:
        """The digest of inputs already in canonical form (`canonical_input`), e.g. the body a request sent."""
        mac = self._keyed.copy()
        mac.update(canonical)
        return mac.hexdigest()

    def hexdigests(self, payloads: Iterable[dict[str, Any] | None]) -> list[str | None]:
        """One digest per payload; None (a row with no valid input) stays None."""
        return [None if payload is None else self.hexdigest(payload) for payload in payloads]


def input_hmac(key: bytes, inputs: dict[str, Any]) -> str:
    """HMAC-SHA256 (hex) of `canonical_input(inputs)` under `key`."""
    return _hasher(key).hexdigest(inputs)


@lru_cache(maxsize=8)
def _hasher(key: bytes) -> InputHasher:
    return InputHasher(key)


def build_audit_table(
    *,
    row_key: Sequence[str] | pa.Array,
    action_id: str | Sequence[str],
    status: Sequence[str] | pa.Array,
    input_hmac: Sequence[str | None],
    http_status: Sequence[int | None] | None = None,
    attempts: Sequence[int] | pa.Array | int = 0,
    duration_ms: Sequence[float | None] | None = None,
    correlation_id: Sequence[str | None] | None = None,
    recorded_at: datetime | Sequence[datetime] | pa.Array | None = None,
) -> pa.Table:
    """An audit part (`AUDIT_SCHEMA`); each keyword is a column, a per-row list or Arrow array (a scalar is
    repeated, None nulls)."""
    columns = {
        "row_key": row_key, "action_id": action_id, "status": status, "input_hmac": input_hmac,
        "http_status": http_status, "attempts": attempts, "duration_ms": duration_ms,
        "correlation_id": correlation_id, "recorded_at": datetime.now(UTC) if recorded_at is None else recorded_at,
    }
    return table_from_columns(AUDIT_SCHEMA, columns, len(row_key))
