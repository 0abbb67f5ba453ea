"""Generators: deterministic, nested, shaped like the default success schemas."""

from __future__ import annotations

import hashlib

import fastjsonschema
import pytest

from dataactions.emulator import Scenario, input_digest
from dataactions.emulator.flatten import flatten
from dataactions.emulator.generators import GENERATORS, customer_by_phone, enrich_customer, order_status


def test_customer_by_phone_gives_these_exact_values() -> None:
    assert customer_by_phone({"phoneNumber": "+15550000010"}) == {
        "customer": {
            "id": "CUST-86512468",
            "name": "Ken Hamilton",
            "tier": "platinum",
            "lifetimeValue": 45356.79,
            "vip": True,
            "since": "2018-06-22T06:51:53Z",
        },
        "accounts": [
            {"id": "ACC-2884480614", "balance": 10684.15},
            {"id": "ACC-9408449159", "balance": 12608.05},
            {"id": "ACC-5461546120", "balance": 5244.74},
        ],
    }


def test_order_status_gives_these_exact_values() -> None:
    assert order_status({"orderId": "A-1001"}) == {
        "orderId": "A-1001",
        "status": "DELAYED",
        "eta": "2026-02-05T12:55:45Z",
        "items": 6,
        "carrier": {"name": "USPS", "trackingNumber": "US175851453476"},
    }


def test_the_workflow_output_agrees_with_the_customer_lookup() -> None:
    customer = customer_by_phone({"phoneNumber": "+15551234567"})["customer"]
    enriched = enrich_customer({"phoneNumber": "+15551234567"})
    assert (enriched["customerId"], enriched["tier"]) == (customer["id"], customer["tier"])


def test_outputs_depend_only_on_the_input() -> None:
    first, again = (
        customer_by_phone({"phoneNumber": "+15550000001"}),
        customer_by_phone({"phoneNumber": "+15550000001"}),
    )
    other = customer_by_phone({"phoneNumber": "+15550000002"})
    assert first == again and first != other


@pytest.mark.parametrize("action", Scenario.default().actions, ids=lambda action: action.id)
def test_every_default_action_answers_within_its_success_schema(action) -> None:  # type: ignore[no-untyped-def]
    validate = fastjsonschema.compile(action.success_schema)
    for n in range(200):
        validate(
            GENERATORS[action.output](
                {
                    "phoneNumber": f"+1555{n:07d}",
                    "orderId": f"O-{n}",
                    "customerId": f"C{n}",
                    "ssnLast4": f"{n % 10000:04d}",
                }
            )
        )


def test_input_digest_is_sha256_of_canonical_json() -> None:
    expected = hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert input_digest({"b": 1, "a": "é"}) == expected
    assert expected == "aa58fba8483623bed37c1b02edfccbdd9a53123837c20bfa4cb4049993a2872e"


def test_flatten_joins_object_keys_and_splits_arrays_of_objects_by_leaf() -> None:
    nested = {
        "customer": {"name": "Ada", "address": {"city": "Cork"}},
        "accounts": [{"id": "a", "balance": 1}, {"id": "b"}],
        "tags": ["x", "y"],
    }
    assert flatten(nested) == {
        "customer.name": "Ada",
        "customer.address.city": "Cork",
        "accounts.id": ["a", "b"],
        "accounts.balance": [1, None],
        "tags": ["x", "y"],
    }
