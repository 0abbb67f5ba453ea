"""Architect-style flattening of an action's output (`?flatten=true`).

The rules are inferred (genesys-api.md §1, "Execute response body"): nested object keys are
dot-joined (`customer.name`) and an array of objects becomes one array per leaf property
(`accounts.id: [...]`). Arrays of scalars stay as they are.
"""

from __future__ import annotations

from typing import Any

__all__ = ["flatten"]


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(flatten(item, f"{name}."))
        elif isinstance(item, list) and any(isinstance(element, dict) for element in item):
            flat.update(_columns(item, name))
        else:
            flat[name] = item
    return flat


def _columns(items: list[Any], name: str) -> dict[str, list[Any]]:
    rows = [flatten(element) if isinstance(element, dict) else {} for element in items]
    leaves = list(dict.fromkeys(leaf for row in rows for leaf in row))
    return {f"{name}.{leaf}": [row.get(leaf) for row in rows] for leaf in leaves}
