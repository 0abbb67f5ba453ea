"""Deterministic output generators: the emulated remote endpoints behind the actions.

Each generator maps an input object to an output object, derived only from a sha256 of the
relevant input fields, so a test can call the generator itself to know the exact answer.
Dates are fixed offsets from fixed epochs: the wall clock never changes an answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

__all__ = [
    "GENERATORS",
    "Generator",
    "credit_check",
    "customer_by_phone",
    "echo",
    "enrich_customer",
    "order_status",
    "verify_identity",
]

Generator = Callable[[Mapping[str, Any]], dict[str, Any]]
T = TypeVar("T")

_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman")
_TIERS = ("bronze", "silver", "gold", "platinum")
_ORDER_STATUSES = ("PLACED", "PROCESSING", "SHIPPED", "DELIVERED", "DELAYED")
_CARRIERS = ("UPS", "FedEx", "DHL", "USPS")
_SEGMENTS = ("retail", "small-business", "enterprise")
_CUSTOMER_EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
_ORDER_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class _Draws:
    """Successive integers drawn from sha512 of a key: the same key always draws the same sequence.

    Each draw takes `value % bound` off one 512-bit integer, so a few dozen small draws cost one hash.
    """

    def __init__(self, *parts: object) -> None:
        self._key = "|".join(map(str, parts)).encode("utf-8")
        self._pool = int.from_bytes(hashlib.sha512(self._key).digest(), "big")
        self._refills = 0

    def below(self, bound: int) -> int:
        if self._pool < bound << 64:
            self._refills += 1
            self._pool = int.from_bytes(hashlib.sha512(self._key + b"#%d" % self._refills).digest(), "big")
        self._pool, value = divmod(self._pool, bound)
        return value

    def pick(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def money(self, max_cents: int) -> float:
        return self.below(max_cents) / 100


def _timestamp(epoch: datetime, seconds: int) -> str:
    return (epoch + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _text(inputs: Mapping[str, Any], field: str) -> str:
    value = inputs.get(field)
    return "" if value is None else str(value)


def customer_by_phone(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`{customer: {id, name, tier, lifetimeValue, vip, since}, accounts: [{id, balance}]}` from phoneNumber."""
    phone = _text(inputs, "phoneNumber")
    draws = _Draws("customer", phone)
    tier = draws.pick(_TIERS)
    customer = {
        "id": f"CUST-{draws.below(10**8):08d}",
        "name": f"{draws.pick(_FIRST_NAMES)} {draws.pick(_LAST_NAMES)}",
        "tier": tier,
        "lifetimeValue": draws.money(5_000_000),
        "vip": tier == "platinum",
        "since": _timestamp(_CUSTOMER_EPOCH, draws.below(12 * 365 * 86400)),
    }
    accounts = [_account(draws) for _ in range(1 + draws.below(3))]
    return {"customer": customer, "accounts": accounts}


def _account(draws: _Draws) -> dict[str, Any]:
    return {"id": f"ACC-{draws.below(10**10):010d}", "balance": draws.money(2_000_000)}


def order_status(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`{orderId, status, eta, items, carrier: {name, trackingNumber}}` from orderId."""
    order_id = _text(inputs, "orderId")
    draws = _Draws("order", order_id)
    carrier = draws.pick(_CARRIERS)
    return {
        "orderId": order_id,
        "status": draws.pick(_ORDER_STATUSES),
        "eta": _timestamp(_ORDER_EPOCH, draws.below(60 * 86400)),
        "items": 1 + draws.below(12),
        "carrier": {"name": carrier, "trackingNumber": f"{carrier[:2].upper()}{draws.below(10**12):012d}"},
    }


def credit_check(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`{customerId, score, band}` from customerId (the default scenario's slow action)."""
    customer_id = _text(inputs, "customerId")
    score = 300 + _Draws("credit", customer_id).below(551)
    band = "excellent" if score >= 750 else "good" if score >= 670 else "fair" if score >= 580 else "poor"
    return {"customerId": customer_id, "score": score, "band": band}


def verify_identity(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`{verified, riskScore}` from customerId + ssnLast4 (the default scenario's secure action)."""
    draws = _Draws("identity", _text(inputs, "customerId"), _text(inputs, "ssnLast4"))
    risk = draws.below(1000) / 1000
    return {"verified": risk < 0.8, "riskScore": risk}


def enrich_customer(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Workflow output: `{customerId, tier, segment, score}`, consistent with `customer_by_phone`."""
    customer = customer_by_phone(inputs)["customer"]
    draws = _Draws("segment", _text(inputs, "phoneNumber"))
    return {
        "customerId": customer["id"],
        "tier": customer["tier"],
        "segment": draws.pick(_SEGMENTS),
        "score": draws.below(101),
    }


def echo(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The input object, unchanged."""
    return dict(inputs)


GENERATORS: dict[str, Generator] = {
    "customer_by_phone": customer_by_phone,
    "order_status": order_status,
    "credit_check": credit_check,
    "verify_identity": verify_identity,
    "enrich_customer": enrich_customer,
    "echo": echo,
}
