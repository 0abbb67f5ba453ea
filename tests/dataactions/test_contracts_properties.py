"""Input contracts, property-based: whatever a row holds, `validate` either returns a body Genesys accepts or
rejects the row naming a field and an expectation, never the row's values.

test_contracts.py holds the worked examples; test_normalize.py already covers arbitrary answers.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastjsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataactions.contracts import MAX_BODY_BYTES, RESERVED_INPUT_NAMES, InputContract, body_size
from dataactions.emulator import Scenario
from dataactions.errors import RowRejected

MARK = "§"  # every generated text value carries it; no message template does
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "required": ["phoneNumber", "limit"],
    "properties": {
        "phoneNumber": {"type": "string", "pattern": r"^\+?[0-9]{7,15}$"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "score": {"type": "number"},
        "active": {"type": "boolean"},
        "channel": {"type": "string", "enum": ["voice", "chat"]},
        "note": {"type": ["string", "null"], "maxLength": 40},
        "anything": {},
    },
}
DECLARED = set(SCHEMA["properties"])
CONTRACT = InputContract.from_action({"id": "custom_-_p", "name": "P", "contract": {"input": {"inputSchema": SCHEMA}}})
ACCEPTS = fastjsonschema.compile(SCHEMA)

marked_text = st.text(max_size=12).map(lambda s: MARK + s)
plausible = st.sampled_from(["+3212345678", "12", " 42 ", "1.5e3", "true", "no", "voice", "chat", "", "0", "101",
                             "NaN", "inf", "-7"])
flat = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats()
        | marked_text | plausible | st.decimals(allow_nan=True) | st.dates()
        | st.datetimes(timezones=st.just(UTC)) | st.binary(max_size=4))
values = flat | st.lists(flat, max_size=2) | st.dictionaries(st.text(max_size=3), flat, max_size=2)
names = st.sampled_from(sorted(DECLARED)) | st.text(max_size=8) | st.sampled_from(sorted(RESERVED_INPUT_NAMES))
anything = st.dictionaries(names, values, max_size=8)
nearly_valid = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries({"phoneNumber": st.sampled_from(["+3212345678", "003212345678"]) | marked_text,
                           "limit": st.integers(min_value=0, max_value=101) | st.sampled_from(["5", " 42 ", "7.0"])},
                          optional={"score": flat, "active": flat, "channel": flat, "note": flat, "anything": flat}),
    st.dictionaries(st.text(max_size=8), flat, max_size=3))
rows = anything | nearly_valid


def _is_flat_json(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, bool, int))


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [*_texts(k), *_texts(v)]]
    return []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_a_row_becomes_a_body_the_contract_accepts_or_a_rejection_naming_field_and_expectation(
        row: dict[str, Any]) -> None:
    try:
        payload = CONTRACT.validate(row, "key-1")
    except RowRejected as rejected:
        assert rejected.row_key == "key-1"
        assert rejected.field_name is None or rejected.field_name in DECLARED | set(row)
        assert rejected.expected and str(rejected).startswith("row key-1: ")
        assert MARK not in str(rejected), "a rejection never carries the row's values"
        return
    assert set(payload) <= DECLARED, "undeclared columns are never sent"
    assert all(_is_flat_json(v) for v in payload.values())
    ACCEPTS(payload)
    json.dumps(payload, allow_nan=False)
    assert body_size(payload) <= MAX_BODY_BYTES
    for name, value in payload.items():
        original = row[name]
        if SCHEMA["properties"][name].get("type") == "integer":
            assert type(value) is int and value == int(Decimal(str(original).strip()))
        if isinstance(original, str) and SCHEMA["properties"][name].get("type") in ("string", ["string", "null"]):
            assert value == original, "text declared as text is sent as it was"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, flat, max_size=8))
def test_a_passthrough_contract_sends_only_names_genesys_allows_and_flat_json_values(row: dict[str, Any]) -> None:
    contract = InputContract.passthrough()
    try:
        payload = contract.validate(row, "k")
    except RowRejected as rejected:
        assert rejected.field_name in row and MARK not in str(rejected)
        return
    for name, value in payload.items():
        assert name[0].isascii() and name[0].isalpha() and name not in RESERVED_INPUT_NAMES
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
        assert _is_flat_json(value) and row[name] not in (None, "")
    json.dumps(payload, allow_nan=False)
    assert set(contract.extra_columns) >= {n for n in row if n not in payload and row[n] not in (None, "")} - {
        n for n in row if n in payload}


_EMULATED = {action.id: action for action in Scenario.default().actions}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_EMULATED)), st.dictionaries(
    st.sampled_from(["phoneNumber", "orderId", "customerId", "ssnLast4", "extra"]), flat | plausible, max_size=5))
def test_what_the_client_lets_through_the_emulated_org_accepts(action_id: str, row: dict[str, Any]) -> None:
    """The client's check never sends a row the platform would refuse for its contract (a wasted request)."""
    spec = _EMULATED[action_id]
    contract = InputContract.from_action({"id": spec.id, "name": spec.name,
                                          "contract": {"input": {"inputSchema": spec.input_schema}}})
    try:
        payload = contract.validate(row, "k")
    except RowRejected:
        return
    fastjsonschema.compile(spec.input_schema)(payload)


def test_the_property_strategies_reach_both_outcomes() -> None:
    """Guard against a vacuous property: the strategies above do produce accepted rows and rejected ones."""
    accepted = CONTRACT.validate({"phoneNumber": "+3212345678", "limit": "5", "when": date(2024, 1, 2)}, "k")
    assert accepted == {"phoneNumber": "+3212345678", "limit": 5}
    for bad in ({"phoneNumber": MARK + "1", "limit": 5}, {"phoneNumber": "+3212345678", "limit": 5.5},
                {"phoneNumber": "+3212345678", "limit": 5, "note": MARK * 41},
                {"phoneNumber": "+3212345678", "limit": 5, "score": datetime(2024, 1, 1)}):
        try:
            CONTRACT.validate(bad, "k")
        except RowRejected as rejected:
            assert MARK not in str(rejected)
        else:
            raise AssertionError(f"{bad} was accepted")
