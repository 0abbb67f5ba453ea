"""Input contracts: JSON Schema compiled once per action; a violation names its field and reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema

from dataactions.emulator.errors import contract_violation

__all__ = ["Validator", "compile_validator", "describe_violation", "validate_input"]

Validator = Callable[[Any], Any]


def compile_validator(schema: dict[str, Any]) -> Validator:
    return fastjsonschema.compile(schema)


def validate_input(validator: Validator, inputs: dict[str, Any]) -> None:
    """Raise a 400 `ApiError` when `inputs` break the contract."""
    try:
        validator(inputs)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise contract_violation(*describe_violation(exc)) from None


def describe_violation(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """(field, reason) in the input's own terms: `phoneNumber`, `must match pattern ^[0-9]+$`."""
    path = _field_path(exc.path or [])
    value = exc.value if isinstance(exc.value, dict) else {}
    if exc.rule == "required":
        missing = [name for name in exc.rule_definition if name not in value]
        return _joined(path, missing), "is required"
    if exc.rule == "additionalProperties":
        known = set((exc.definition or {}).get("properties", {}))
        extra = sorted(name for name in value if name not in known)
        return _joined(path, extra), "is not allowed by the contract"
    return path or "(body)", exc.message.removeprefix(exc.name).strip()


def _field_path(parts: list[Any]) -> str:
    return ".".join(str(part) for part in parts[1:])


def _joined(prefix: str, names: list[str]) -> str:
    return ", ".join(f"{prefix}.{name}" if prefix else name for name in names)
