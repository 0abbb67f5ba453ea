from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataactions.mapping import Mapping
from dataactions.normalize import ValueMismatch, coerce_value, normalize_batch, raw_answer_json

UTC = UTC
CUSTOMER = Mapping.from_dict({"columns": {
    "customer_id": {"path": "$.customer.id", "type": "string"},
    "lifetime_value": {"path": "$.customer.lifetimeValue", "type": "number", "default": 0},
    "vip": {"path": "$.customer.vip", "type": "boolean"},
    "since": {"path": "$.customer.since", "type": "timestamp"},
    "first_account": "$.accounts[0].id",
    "account_ids": "$.accounts[*].id",
    "visits": {"path": "$.customer.visits", "type": "integer"},
}})


def answer(**customer: Any) -> dict[str, Any]:
    base = {"id": "C1", "name": "Ann", "tier": "gold", "lifetimeValue": 1250.5, "vip": True,
            "since": "2019-03-04T05:06:07Z", "visits": 12}
    return {"customer": {**base, **customer}, "accounts": [{"id": "A1", "balance": 10}, {"id": "A2", "balance": 0}]}


def one(mapping: Mapping, value: Any) -> tuple[Any, str | None]:
    result = normalize_batch(mapping, [value])
    return result.table.to_pylist()[0], result.errors[0]


def test_a_good_answer_becomes_a_typed_row() -> None:
    result = normalize_batch(CUSTOMER, [answer()])
    assert result.table.schema == CUSTOMER.schema
    assert result.table.to_pylist() == [{
        "customer_id": "C1", "lifetime_value": 1250.5, "vip": True,
        "since": datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC), "first_account": "A1",
        "account_ids": '["A1","A2"]', "visits": 12,
    }]
    assert result.errors == [None] and result.error_count == 0


def test_none_answers_give_null_rows_without_error() -> None:
    result = normalize_batch(CUSTOMER, [None, answer(), None])
    assert result.table.num_rows == 3
    assert result.columns["customer_id"] == [None, "C1", None]
    assert result.columns["lifetime_value"] == [None, 1250.5, None]
    assert result.errors == [None, None, None]


def test_missing_and_null_values_take_the_default_else_null() -> None:
    result = normalize_batch(CUSTOMER, [{"customer": {"lifetimeValue": None}}, {}])
    assert result.columns["lifetime_value"] == [0.0, 0.0]
    assert result.columns["customer_id"] == [None, None]
    assert result.columns["account_ids"] == [None, None]
    assert result.errors == [None, None]


def test_a_wrong_value_nulls_its_cell_and_names_column_path_and_type() -> None:
    result = normalize_batch(CUSTOMER, [answer(visits="abc", id={"nested": "S3CRET"}), answer()])
    row = result.table.to_pylist()[0]
    assert row["visits"] is None and row["customer_id"] is None and row["lifetime_value"] == 1250.5
    assert result.errors[0] == (
        "column 'customer_id' ($.customer.id): expected text, got an object; "
        "column 'visits' ($.customer.visits): expected an integer, got text that is not an integer"
    )
    assert result.errors[1] is None
    assert "abc" not in result.errors[0] and "S3CRET" not in result.errors[0]


def test_several_matches_for_a_non_string_type_is_an_error() -> None:
    mapping = Mapping.from_dict({"columns": {
        "balance": {"path": "$.accounts[*].balance", "type": "number"},
        "positive": {"path": "$.accounts[?(@.balance > 0)].balance", "type": "number"},
    }})
    row, error = one(mapping, answer())
    assert row == {"balance": None, "positive": 10.0}
    assert error == ("column 'balance' ($.accounts[*].balance): expected a number, "
                     "got 2 matching values (only a string column keeps several)")


def test_a_string_column_on_a_multi_path_is_always_a_json_array() -> None:
    mapping = Mapping.from_dict({"columns": {"ids": "$.accounts[*].id"}})
    result = normalize_batch(mapping, [{"accounts": [{"id": "A1"}]}, {"accounts": []}, {"accounts": [{"id": 7}]}])
    assert result.columns["ids"] == ['["A1"]', None, "[7]"]


@pytest.mark.parametrize(("column_type", "value", "expected"), [
    ("string", "x", "x"), ("string", 42, "42"), ("string", 1.5, "1.5"), ("string", True, "true"),
    ("integer", 7, 7), ("integer", 3.0, 3), ("integer", " -12 ", -12), ("integer", 2**63 - 1, 2**63 - 1),
    ("number", 2, 2.0), ("number", 2.5, 2.5), ("number", "1.5e3", 1500.0), ("number", "-.5", -0.5),
    ("boolean", True, True), ("boolean", "FALSE", False),
    ("timestamp", "2024-01-02T03:04:05Z", 1704164645000000),
    ("timestamp", "2024-01-02T04:04:05+01:00", 1704164645000000),
    ("timestamp", "2024-01-02T03:04:05.123456", 1704164645123456),
    ("timestamp", "2024-01-02", 1704153600000000),
    ("timestamp", 1704164645000, 1704164645000000),
    ("timestamp", 1704164645000.5, 1704164645000500),
])
def test_coercions_accept(column_type: str, value: Any, expected: Any) -> None:
    assert coerce_value(column_type, value) == expected


@pytest.mark.parametrize(("column_type", "value", "got"), [
    ("string", {"a": 1}, "an object"), ("string", [1], "an array"),
    ("integer", True, "a boolean"), ("integer", 1.5, "a number with a fraction"),
    ("integer", 2**63, "a number outside the int64 range"), ("integer", "12.0", "text that is not an integer"),
    ("integer", float("nan"), "a non-finite number"), ("integer", None, "a NoneType"),
    ("number", False, "a boolean"), ("number", "1,5", "text that is not a number"), ("number", 10**400,
                                                                                       "a number outside the float64 range"),
    ("boolean", 1, "a number"), ("boolean", "yes", "text that is not true or false"),
    ("timestamp", "yesterday", "text that is not an ISO-8601 timestamp"), ("timestamp", True, "a boolean"),
    ("timestamp", 10**20, "epoch milliseconds outside the years 1..9999"),
    ("timestamp", float("inf"), "epoch milliseconds outside the years 1..9999"),
    ("timestamp", "0001-01-01T00:00:00+01:00", "a time outside the years 1..9999 in UTC"),
])
def test_coercions_reject(column_type: str, value: Any, got: str) -> None:
    with pytest.raises(ValueMismatch) as info:
        coerce_value(column_type, value)
    assert info.value.got == got


def test_timestamps_land_as_utc_microseconds() -> None:
    mapping = Mapping.from_dict({"columns": {"t": {"path": "$.t", "type": "timestamp"}}})
    result = normalize_batch(mapping, [{"t": "2024-06-01T12:00:00.5-02:00"}, {"t": 0}])
    assert result.table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert result.columns["t"] == [datetime(2024, 6, 1, 14, 0, 0, 500000, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]


def test_text_that_is_not_valid_unicode_is_an_error_not_a_crash() -> None:
    mapping = Mapping.from_dict({"columns": {"s": "$.s"}})
    result = normalize_batch(mapping, [{"s": "ok"}, {"s": "bad\ud800"}])
    assert result.columns["s"] == ["ok", None]
    assert result.errors[1] is not None and "column 's' ($.s)" in result.errors[1]


def test_identity_mapping_keeps_the_row_count() -> None:
    result = normalize_batch(Mapping.identity(), [answer(), None, {}])
    assert result.table.num_rows == 3 and result.table.num_columns == 0
    assert result.errors == [None, None, None]


def test_raw_answer_json() -> None:
    assert raw_answer_json(None) is None
    assert raw_answer_json({"b": 1, "a": ["é", None]}) == '{"b":1,"a":["é",null]}'
    assert raw_answer_json({"s": "x\ud800"}) == '{"s":"x\\ud800"}'
    assert json.loads(raw_answer_json(answer()) or "") == answer()


json_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
                | st.sampled_from(["2024-01-02T03:04:05Z", "42", "1.5", "true", "x\ud800"]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["customer", "accounts", "id", "since", "lifetimeValue", "vip", "visits"]) | st.text(max_size=3),
        inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.none() | json_values, max_size=8))
def test_arbitrary_answers_never_crash_and_always_fit_the_schema(answers: list[Any]) -> None:
    result = normalize_batch(CUSTOMER, answers)
    assert result.table.schema == CUSTOMER.schema
    assert result.table.num_rows == len(answers) == len(result.errors)
    result.table.validate(full=True)
    for position, found in enumerate(answers):
        if found is None:
            assert result.errors[position] is None


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_raw_answer_json_always_round_trips(document: dict[str, Any]) -> None:
    text = raw_answer_json(document)
    assert text is not None
    text.encode("utf-8")
    pa.array([text], pa.string())
    reparsed = json.loads(text)
    assert json.dumps(reparsed, sort_keys=True) == json.dumps(document, sort_keys=True)


def test_epoch_reference() -> None:
    assert coerce_value("timestamp", "1970-01-01T00:00:01Z") == timedelta(seconds=1) // timedelta(microseconds=1)


def test_the_example_mapping_fits_the_emulator_customer_lookup() -> None:
    generators = pytest.importorskip("dataactions.emulator.generators")
    mapping = Mapping.load(Path(__file__).resolve().parents[2] / "data" / "mappings" / "customer_by_phone.yaml")
    answers = [generators.customer_by_phone({"phoneNumber": f"+3247{i:07d}"}) for i in range(50)]
    result = normalize_batch(mapping, answers)
    assert result.errors == [None] * 50
    rows = result.table.to_pylist()
    for found, row in zip(answers, rows):
        assert row["customer_id"] == found["customer"]["id"]
        assert row["lifetime_value"] == found["customer"]["lifetimeValue"]
        assert row["customer_since"].tzinfo is not None
        assert json.loads(row["account_ids"]) == [a["id"] for a in found["accounts"]]
