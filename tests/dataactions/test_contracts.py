from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dataactions.contracts import MAX_BODY_BYTES, InputContract, body_size
from dataactions.errors import ConfigurationError, RowRejected
from dataactions.readers import iter_batches

PHONE_PATTERN = r"^\+?[0-9]{7,15}$"
SECRET = "S3CRET-VALUE-4711"


def action_with(properties: dict[str, Any], required: list[str] | None = None, **schema: Any) -> dict[str, Any]:
    input_schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
                    "properties": properties, "required": required or [], **schema}
    return {"id": "custom_-_1", "name": "Lookup", "contract": {"input": {"inputSchema": input_schema}}}


@pytest.fixture
def lookup() -> InputContract:
    return InputContract.from_action(action_with(
        {
            "phoneNumber": {"type": "string", "pattern": PHONE_PATTERN},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
            "channel": {"type": "string", "enum": ["voice", "chat"]},
        },
        required=["phoneNumber"],
    ))


def rejection(contract: InputContract, row: dict[str, Any], key: str = "k1") -> RowRejected:
    with pytest.raises(RowRejected) as info:
        contract.validate(row, key)
    return info.value


def test_csv_strings_are_coerced_to_declared_types(lookup: InputContract) -> None:
    row = {"phoneNumber": "+3212345678", "limit": " 42 ", "score": "1.5e3", "active": "Yes", "channel": "chat"}
    assert lookup.validate(row, "k1") == {
        "phoneNumber": "+3212345678", "limit": 42, "score": 1500.0, "active": True, "channel": "chat",
    }


def test_empty_values_are_omitted(lookup: InputContract) -> None:
    assert lookup.validate({"phoneNumber": "+3212345678", "limit": "", "score": None}, "k1") == {
        "phoneNumber": "+3212345678"
    }


def test_undeclared_columns_are_not_sent_and_are_listed(lookup: InputContract) -> None:
    payload = lookup.validate({"phoneNumber": "+3212345678", "customerId": "c1", "notes": "x"}, "k1")
    assert payload == {"phoneNumber": "+3212345678"}
    lookup.validate({"phoneNumber": "+3212345678", "region": "eu"}, "k2")
    assert lookup.extra_columns == ("customerId", "notes", "region")
    assert lookup.declared == ("active", "channel", "limit", "phoneNumber", "score")
    assert not lookup.is_passthrough


def test_pattern_violation_names_field_and_pattern(lookup: InputContract) -> None:
    error = rejection(lookup, {"phoneNumber": SECRET})
    assert (error.row_key, error.field_name) == ("k1", "phoneNumber")
    assert error.expected == f"must match pattern {PHONE_PATTERN}"
    assert str(error) == f"row k1: field 'phoneNumber': must match pattern {PHONE_PATTERN}"


def test_missing_required_field_is_named(lookup: InputContract) -> None:
    for row in ({}, {"phoneNumber": ""}, {"phoneNumber": None, "limit": "3"}):
        error = rejection(lookup, row)
        assert (error.field_name, error.expected) == ("phoneNumber", "is required")


@pytest.mark.parametrize(("row", "field", "expected"), [
    ({"limit": "4.5"}, "limit", "must be an integer (a whole number such as 42)"),
    ({"limit": True}, "limit", "must be an integer (a whole number such as 42)"),
    ({"limit": "0"}, "limit", "must be bigger than or equal to 1"),
    ({"limit": "101"}, "limit", "must be smaller than or equal to 100"),
    ({"score": "12abc"}, "score", "must be a number (such as 42 or 1.5)"),
    ({"score": "nan"}, "score", "must be a number (such as 42 or 1.5)"),
    ({"score": "1e999"}, "score", "must be a finite number"),
    ({"score": float("inf")}, "score", "must be a number (such as 42 or 1.5); NaN and infinity are not JSON numbers"),
    ({"active": "maybe"}, "active", "must be a boolean (true or false)"),
    ({"active": 2}, "active", "must be a boolean (true or false)"),
    ({"channel": "fax"}, "channel", "must be one of ['voice', 'chat']"),
    ({"channel": {"a": 1}}, "channel", "must be a flat value (string, integer, number, boolean or null): "
                                       "Genesys inputs cannot be objects or arrays"),
    ({"limit": [1, 2]}, "limit", "must be a flat value (string, integer, number, boolean or null): "
                                 "Genesys inputs cannot be objects or arrays"),
    ({"channel": b"voice"}, "channel", "must be a string, not binary data"),
    ({"channel": "vo\udcffce"}, "channel", "must be valid Unicode text"),
])
def test_violations_name_field_and_expectation(
    lookup: InputContract, row: dict[str, Any], field: str, expected: str
) -> None:
    error = rejection(lookup, {"phoneNumber": "+3212345678", **row})
    assert (error.field_name, error.expected) == (field, expected)


@pytest.mark.parametrize("row", [
    {"phoneNumber": SECRET},
    {"phoneNumber": "+3212345678", "limit": SECRET},
    {"phoneNumber": "+3212345678", "channel": SECRET},
    {"phoneNumber": "+3212345678", "active": SECRET},
    {"phoneNumber": "+3212345678", "score": {"x": SECRET}},
    {"phoneNumber": "+3212345678", "channel": SECRET * 50_000},
])
def test_messages_never_carry_the_value(lookup: InputContract, row: dict[str, Any]) -> None:
    error = rejection(lookup, row)
    assert SECRET not in str(error) and SECRET not in error.expected


def test_coercion_of_native_parquet_values(lookup: InputContract) -> None:
    contract = InputContract.from_action(action_with({
        "id": {"type": "string"}, "when": {"type": "string"}, "day": {"type": "string"},
        "amount": {"type": "number"}, "count": {"type": "integer"}, "flag": {"type": "boolean"},
    }))
    row = {"id": 12, "when": datetime(2024, 1, 2, 3, 4, tzinfo=UTC), "day": date(2024, 1, 2),
           "amount": Decimal("2.50"), "count": 3.0, "flag": 1}
    assert contract.validate(row, "k") == {
        "id": "12", "when": "2024-01-02T03:04:00+00:00", "day": "2024-01-02", "amount": 2.5, "count": 3,
        "flag": True,
    }


def test_a_type_list_tries_each_type() -> None:
    contract = InputContract.from_action(action_with({"ref": {"type": ["integer", "string", "null"]}}))
    assert contract.validate({"ref": "17"}, "k") == {"ref": 17}
    assert contract.validate({"ref": "A-17"}, "k") == {"ref": "A-17"}


def test_oversize_body_is_rejected_naming_the_largest_field() -> None:
    contract = InputContract.from_action(action_with({"a": {"type": "string"}, "note": {"type": "string"}}))
    assert contract.validate({"a": "x", "note": "é" * 200_000}, "k")["a"] == "x"
    error = rejection(contract, {"a": "x", "note": "é" * 256_000})
    assert error.field_name == "note"
    assert error.expected == ("makes the JSON body 512,019 bytes; Genesys accepts at most 512,000 bytes "
                              "per request")


def test_body_size_is_compact_utf8_json() -> None:
    assert body_size({"a": "é", "b": 1}) == len('{"a":"é","b":1}'.encode())
    assert body_size({"n": "x" * (MAX_BODY_BYTES - 8)}) == MAX_BODY_BYTES


def test_passthrough_sends_allowed_flat_columns() -> None:
    contract = InputContract.from_action({"id": "x", "contract": {"input": {}}})
    assert contract.declared is None and contract.is_passthrough
    row = {"customerId": "c1", "amount": "5", "empty": None, "2bad": "x", "with space": "y", "rawRequest": "z"}
    assert contract.validate(row, "k") == {"customerId": "c1", "amount": "5"}
    assert contract.extra_columns == ("2bad", "rawRequest", "with space")
    error = rejection(contract, {"customerId": {"nested": True}})
    assert error.field_name == "customerId" and "flat value" in error.expected


def test_validate_batch_reports_positions(tmp_path: Path, lookup: InputContract) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,phoneNumber,limit\nk1,+3212345678,5\nk2,12,5\nk3,+3212345678,x\nk4,+3212345679,\n")
    [batch] = iter_batches(path, 10, key_column="id")
    accepted, rejected = lookup.validate_batch(batch)
    assert accepted == [(0, {"phoneNumber": "+3212345678", "limit": 5}), (3, {"phoneNumber": "+3212345679"})]
    assert [(i, e.row_key, e.field_name) for i, e in rejected] == [(1, "k2", "phoneNumber"), (2, "k3", "limit")]
    assert lookup.extra_columns == ("id",)


def test_an_uncompilable_schema_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="input schema of Lookup cannot be compiled"):
        InputContract.from_action(action_with({"a": {"type": "string", "pattern": "("}}))
    with pytest.raises(ConfigurationError, match="input schema of Lookup cannot be compiled"):
        InputContract.from_action(action_with({"a": {"$ref": "https://example.com/schema.json"}}))


def test_the_emulator_customer_lookup_contract() -> None:
    scenario = Path(__file__).resolve().parents[2] / "dataactions" / "emulator" / "default.yaml"
    if not scenario.is_file():
        pytest.skip("no emulator scenario")
    yaml = pytest.importorskip("yaml")
    actions = {a["id"]: a for a in yaml.safe_load(scenario.read_text())["actions"]}
    spec = actions["custom_-_customer-by-phone"]
    contract = InputContract.from_action({"id": spec["id"], "name": spec["name"],
                                          "contract": {"input": {"inputSchema": spec["input_schema"]}}})
    assert contract.validate({"phoneNumber": "+3212345678", "customerId": "c1"}, "k") == {"phoneNumber": "+3212345678"}
    error = rejection(contract, {"phoneNumber": "12-34"})
    assert (error.field_name, error.expected) == ("phoneNumber", f"must match pattern {PHONE_PATTERN}")
