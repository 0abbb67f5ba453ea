"""Normalize, property-based, beyond test_normalize.py (arbitrary answers never crash and fit the schema):
what a row error says never carries the answer's values, and a value that fits its column lands unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataactions.mapping import Mapping
from dataactions.normalize import normalize_batch

MARK = "§"  # every generated text carries it; no error template does
MAPPING = Mapping.from_dict({"columns": {
    "customer_id": {"path": "$.customer.id", "type": "string"},
    "lifetime_value": {"path": "$.customer.lifetimeValue", "type": "number"},
    "vip": {"path": "$.customer.vip", "type": "boolean"},
    "since": {"path": "$.customer.since", "type": "timestamp"},
    "visits": {"path": "$.customer.visits", "type": "integer"},
    "account_ids": "$.accounts[*].id",
}})
marked = st.text(max_size=10).map(lambda s: MARK + s)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | marked
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["id", "x", MARK]), inner, max_size=3), max_leaves=10)
customers = st.fixed_dictionaries({}, optional={name: values for name in
                                                ("id", "lifetimeValue", "vip", "since", "visits")})
answers = st.fixed_dictionaries({"customer": customers | values},
                                optional={"accounts": st.lists(st.fixed_dictionaries({"id": values}), max_size=3)
                                          | values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(answers, max_size=6))
def test_row_errors_name_column_and_type_never_the_value(batch: list[dict[str, Any]]) -> None:
    result = normalize_batch(MAPPING, batch)
    for error in result.errors:
        assert error is None or (MARK not in error and "column '" in error), error


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"customer": st.fixed_dictionaries({
    "id": st.text(), "lifetimeValue": st.floats(allow_nan=False, allow_infinity=False),
    "vip": st.booleans(), "visits": st.integers(min_value=-(2**63), max_value=2**63 - 1)})}), max_size=6))
def test_values_that_fit_their_columns_land_unchanged(batch: list[dict[str, Any]]) -> None:
    result = normalize_batch(MAPPING, batch)
    assert result.errors == [None] * len(batch) or any("\ud800" <= c <= "\udfff" for a in batch
                                                        for c in a["customer"]["id"])
    for row, answer, error in zip(result.table.to_pylist(), batch, result.errors, strict=True):
        if error is None:
            customer = answer["customer"]
            assert (row["customer_id"], row["vip"], row["visits"]) == (customer["id"], customer["vip"],
                                                                        customer["visits"])
            assert row["lifetime_value"] == customer["lifetimeValue"]
