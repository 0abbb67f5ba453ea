"""Fault injection: which scenario fault, if any, a given request meets.

Faults are tried in scenario order; the first whose selectors all hold fires. A `rate` draw is a
hash of (seed, fault index, input digest, attempt number), not a shared RNG stream, so the same
inputs meet the same faults whatever order concurrent requests arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataactions.emulator.scenario import Fault

__all__ = ["FaultInjector", "matches", "seeded_draw"]

_MISSING = object()


@dataclass(slots=True)
class _FaultState:
    fault: Fault
    index: int
    candidates: int = 0
    fired: int = 0
    fired_by_input: dict[str, int] = field(default_factory=dict)


def matches(match: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    """Every field equals its value; a list of values means any of them."""
    for name, expected in match.items():
        actual = inputs.get(name, _MISSING)
        if actual is _MISSING or not (actual in expected if isinstance(expected, list) else actual == expected):
            return False
    return True


def seeded_draw(seed: int, index: int, digest: str, attempt: int) -> float:
    """A uniform number in [0, 1) fixed by its arguments."""
    raw = hashlib.sha256(f"{seed}|{index}|{digest}|{attempt}".encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


class FaultInjector:
    def __init__(self, faults: list[Fault], seed: int) -> None:
        self._states = [_FaultState(fault, index) for index, fault in enumerate(faults)]
        self._seed = seed

    def pick(self, action_id: str, endpoint: str, inputs: Mapping[str, Any], digest: str, attempt: int) -> Fault | None:
        """The fault this request meets (recorded as fired), or None."""
        for state in self._states:
            if self._selects(state, action_id, endpoint, inputs, digest, attempt):
                self._record(state, digest)
                return state.fault
        return None

    def fired_counts(self) -> list[int]:
        return [state.fired for state in self._states]

    def _selects(
        self, state: _FaultState, action_id: str, endpoint: str, inputs: Mapping[str, Any], digest: str, attempt: int
    ) -> bool:
        fault = state.fault
        if fault.action is not None and fault.action != action_id:
            return False
        if fault.endpoint != "any" and fault.endpoint != endpoint:
            return False
        if endpoint == "token" and fault.endpoint != "token":
            return False
        if fault.match is not None and not matches(fault.match, inputs):
            return False
        if fault.times is not None and state.fired_by_input.get(digest, 0) >= fault.times:
            return False
        return self._sampled(state, digest, attempt)

    def _sampled(self, state: _FaultState, digest: str, attempt: int) -> bool:
        fault = state.fault
        if fault.every_nth is not None:
            state.candidates += 1
            if state.candidates % fault.every_nth:
                return False
        return fault.rate is None or seeded_draw(self._seed, state.index, digest, attempt) < fault.rate

    @staticmethod
    def _record(state: _FaultState, digest: str) -> None:
        state.fired += 1
        if state.fault.times is not None:
            state.fired_by_input[digest] = state.fired_by_input.get(digest, 0) + 1
