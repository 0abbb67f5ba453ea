from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataactions.audit import AUDIT_SCHEMA, InputHasher, build_audit_table, canonical_input, input_hmac
from dataactions.errors import ConfigurationError
from dataactions.sink import PartStore

KEY = b"0123456789abcdef-audit-key"
WHEN = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_canonical_input_is_sorted_compact_utf8() -> None:
    assert canonical_input({"b": 1, "a": "é", "c": None, "d": True}) == '{"a":"é","b":1,"c":null,"d":true}'.encode()
    assert canonical_input({"x": 1, "y": 2}) == canonical_input({"y": 2, "x": 1})


def test_canonical_input_takes_raw_parquet_values() -> None:
    raw = {"when": datetime(2024, 1, 2, tzinfo=UTC), "amount": Decimal("1.50"), "blob": b"\x01",
           "ratio": float("nan"), "tags": [1, 2]}
    assert canonical_input(raw) == (b'{"amount":"1.50","blob":"01","ratio":NaN,"tags":[1,2],'
                                    b'"when":"2024-01-02T00:00:00+00:00"}')


def test_input_hmac_is_hmac_sha256_of_the_canonical_input() -> None:
    inputs = {"phoneNumber": "+3212345678", "limit": 5}
    expected = hmac.new(KEY, b'{"limit":5,"phoneNumber":"+3212345678"}', hashlib.sha256).hexdigest()
    assert input_hmac(KEY, inputs) == expected
    assert InputHasher(KEY).hexdigest(inputs) == expected
    assert input_hmac(KEY + b"x", inputs) != expected
    assert input_hmac(KEY, {**inputs, "limit": 6}) != expected


def test_hasher_reuses_its_keyed_state_across_rows() -> None:
    hasher = InputHasher(KEY)
    payloads = [{"n": i} for i in range(3)]
    assert hasher.hexdigests([*payloads, None]) == [input_hmac(KEY, p) for p in payloads] + [None]
    assert hasher.hexdigest(payloads[0]) == input_hmac(KEY, payloads[0])
    assert hasher.hexdigest_of(canonical_input(payloads[1])) == input_hmac(KEY, payloads[1])  # a body already sent


def test_an_empty_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DATAACTIONS_AUDIT_KEY"):
        InputHasher(b"")


def test_audit_schema() -> None:
    assert AUDIT_SCHEMA.names == ["row_key", "action_id", "status", "input_hmac", "http_status", "attempts",
                                  "duration_ms", "correlation_id", "recorded_at"]
    assert AUDIT_SCHEMA.field("http_status").type == pa.int32()
    assert AUDIT_SCHEMA.field("duration_ms").type == pa.float64()
    assert AUDIT_SCHEMA.field("recorded_at").type == pa.timestamp("us", tz="UTC")


def audit_table(payloads: list[dict | None], key: bytes = KEY) -> pa.Table:
    n = len(payloads)
    return build_audit_table(
        row_key=[f"k{i}" for i in range(n)],
        action_id="custom_-_3af155c2",
        status=["succeeded" if p else "rejected" for p in payloads],
        input_hmac=InputHasher(key).hexdigests(payloads),
        http_status=[200 if p else None for p in payloads],
        attempts=[1 if p else 0 for p in payloads],
        duration_ms=[12.5 if p else None for p in payloads],
        correlation_id=["corr-1" if p else None for p in payloads],
        recorded_at=WHEN,
    )


def test_build_audit_table() -> None:
    table = audit_table([{"phoneNumber": "+3212345678"}, None])
    assert table.schema == AUDIT_SCHEMA
    rows = table.to_pylist()
    assert rows[0]["action_id"] == rows[1]["action_id"] == "custom_-_3af155c2"
    assert rows[0]["input_hmac"] == input_hmac(KEY, {"phoneNumber": "+3212345678"})
    assert rows[1]["input_hmac"] is None and rows[1]["http_status"] is None
    assert rows[0]["recorded_at"] == WHEN


def test_raw_inputs_never_reach_the_audit_parquet(tmp_path: Path) -> None:
    secrets = ["+32470123456", "jane.doe@example.com", "Jane Q. Doe", "BE71096123456769"]
    payloads = [{"phoneNumber": secrets[0], "email": secrets[1]}, {"name": secrets[2], "iban": secrets[3]}]
    table = audit_table(payloads)
    committed = PartStore(tmp_path, "audit", schema=AUDIT_SCHEMA).write("run-a", "part-000000", table)
    plain = tmp_path / "plain.parquet"
    pq.write_table(table, plain, compression="none")
    canary = tmp_path / "canary.parquet"
    pq.write_table(table.set_column(0, "row_key", pa.array([secrets[0], "k1"])), canary, compression="none")

    assert secrets[0].encode() in canary.read_bytes()
    for path in (committed, plain):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data
    text = " ".join(str(v) for row in pq.read_table(committed).to_pylist() for v in row.values())
    assert not any(secret in text for secret in secrets)
