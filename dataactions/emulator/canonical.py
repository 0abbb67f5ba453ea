"""Canonical JSON and the input digest that keys the per-input counters."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "input_digest"]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def input_digest(inputs: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of an execute body (the key of `stats()["by_input"]`)."""
    return hashlib.sha256(canonical_json(inputs).encode("utf-8")).hexdigest()
