"""Scenario: the catalog and the behaviour of one emulated Genesys Cloud org.

A scenario is a YAML or JSON file validated by the pydantic models below; unknown keys are
rejected so a typo names its field instead of being ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import fastjsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataactions.emulator.generators import GENERATORS

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "ActionSpec",
    "Credential",
    "Fault",
    "Latency",
    "OutcomeRule",
    "RateLimit",
    "Scenario",
    "WorkflowSpec",
    "load_scenario",
]

DEFAULT_SCENARIO_PATH = Path(__file__).with_name("default.yaml")

FaultKind = Literal["status", "malformed_json", "drop_connection", "timeout", "revoke_token"]
WorkflowOutcome = Literal["COMPLETED", "FAILED", "ERROR", "RUNNING"]
MatchSpec = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credential(_Model):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class RateLimit(_Model):
    """Sliding window per token: at most `requests` admitted in any `per_seconds`."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


class Latency(_Model):
    """Remote latency. A bare number means `{distribution: fixed, ms: N}`.

    | distribution | fields |
    |---|---|
    | fixed | ms |
    | uniform | min_ms, max_ms |
    | normal | mean_ms, stddev_ms (clipped at 0) |
    | lognormal | mean_ms, stddev_ms (of the latency itself, not of its log) |
    """

    distribution: Literal["fixed", "uniform", "normal", "lognormal"] = "fixed"
    ms: float = Field(0.0, ge=0)
    min_ms: float | None = Field(None, ge=0)
    max_ms: float | None = Field(None, ge=0)
    mean_ms: float | None = Field(None, ge=0)
    stddev_ms: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _number_means_fixed(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"distribution": "fixed", "ms": value}
        return value

    @model_validator(mode="after")
    def _fields_for_distribution(self) -> Latency:
        if self.distribution == "uniform":
            self._require("min_ms", "max_ms")
            if self.min_ms > self.max_ms:  # type: ignore[operator]
                raise ValueError("latency.min_ms must not exceed latency.max_ms")
        if self.distribution in ("normal", "lognormal"):
            self._require("mean_ms", "stddev_ms")
        if self.distribution == "lognormal" and not self.mean_ms:
            raise ValueError("latency.mean_ms must be > 0 for a lognormal distribution")
        return self

    def _require(self, *names: str) -> None:
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(f"latency distribution {self.distribution!r} needs {', '.join(missing)}")


def _known_generator(name: str) -> str:
    if name not in GENERATORS:
        raise ValueError(f"unknown output generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return name


def _compilable_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ValueError(f"not a valid JSON Schema: {exc}") from exc
    return schema


class ActionSpec(_Model):
    id: str = Field(min_length=1, pattern=r"^[^/?#\s]+$")
    name: str = Field(min_length=1)
    category: str = "Emulated Web Services"
    integration_id: str | None = None
    version: int = Field(1, ge=1)
    secure: bool = False
    timeout_seconds: float = Field(20, gt=0, le=60)
    input_schema: dict[str, Any]
    success_schema: dict[str, Any]
    output: str
    latency: Latency | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    check_output = field_validator("output")(_known_generator)
    check_schemas = field_validator("input_schema", "success_schema")(_compilable_schema)

    @field_validator("input_schema")
    @classmethod
    def _input_is_object(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("type") != "object":
            raise ValueError("the input contract must be a JSON Schema of type 'object'")
        return schema


class OutcomeRule(_Model):
    match: MatchSpec
    outcome: WorkflowOutcome


class WorkflowSpec(_Model):
    flow_id: str = Field(min_length=1, pattern=r"^[^/?#\s]+$")
    name: str = Field(min_length=1)
    flow_version: str = "1.0"
    duration_seconds: float = Field(0.5, ge=0)
    output: str = "echo"
    outcome: WorkflowOutcome = "COMPLETED"
    outcomes_by_input: list[OutcomeRule] = Field(default_factory=list)

    check_output = field_validator("output")(_known_generator)


class Fault(_Model):
    """One injected fault. All given selectors must hold; none given means every request.

    Selectors: `action`, `endpoint` (`token` is POST /oauth/token, which `any` leaves alone),
    `match` (input field → value, or list of values = any of),
    `every_nth` (the Nth, 2Nth... candidate request), `rate` (a seeded draw per input and attempt).
    `times` caps how often it fires for one input (per input digest).
    """

    kind: FaultKind
    status: int | None = Field(None, ge=400, le=599)
    retry_after: int | None = Field(None, ge=0)
    code: str | None = None
    message: str | None = None
    action: str | None = None
    endpoint: Literal["execute", "test", "any", "token"] = "any"
    match: MatchSpec | None = None
    every_nth: int | None = Field(None, ge=1)
    rate: float | None = Field(None, ge=0, le=1)
    times: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _status_when_needed(self) -> Fault:
        if self.kind == "status" and self.status is None:
            raise ValueError("a fault of kind 'status' needs a 'status' (e.g. 503)")
        if self.kind != "status" and self.status is not None:
            raise ValueError(f"'status' only applies to kind 'status', not {self.kind!r}")
        if self.endpoint == "token" and (self.kind != "status" or self.action is not None or self.match is not None):
            raise ValueError("a fault at endpoint 'token' (POST /oauth/token) is of kind 'status', without "
                             "'action' or 'match' (a token request carries no action and no input)")
        return self


def _default_credentials() -> list[Credential]:
    return [Credential(client_id="demo-client", client_secret="demo-secret")]


def _default_rate_limit() -> RateLimit:
    return RateLimit(requests=300, per_seconds=60)


class Scenario(_Model):
    credentials: list[Credential] = Field(default_factory=_default_credentials, min_length=1)
    token_lifetime_seconds: float = Field(86400, gt=0)
    rate_limit: RateLimit | None = Field(default_factory=_default_rate_limit)
    concurrent_executions_max: int | None = Field(None, ge=1)
    concurrent_retry_after_seconds: int = Field(1, ge=1)
    retry_after_grace_seconds: float = Field(0.25, ge=0)
    max_body_bytes: int = Field(512_000, ge=1)
    latency: Latency = Field(default_factory=Latency)
    seed: int = 0
    actions: list[ActionSpec] = Field(default_factory=list)
    workflows: list[WorkflowSpec] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        _unique("actions", [action.id for action in self.actions])
        _unique("workflows", [flow.flow_id for flow in self.workflows])
        known = {action.id for action in self.actions}
        for index, fault in enumerate(self.faults):
            if fault.action is not None and fault.action not in known:
                raise ValueError(f"faults.{index}.action: unknown action {fault.action!r}")
        return self

    @classmethod
    def default(cls) -> Scenario:
        return load_scenario(DEFAULT_SCENARIO_PATH)

    def action(self, action_id: str) -> ActionSpec:
        return next(action for action in self.actions if action.id == action_id)


def _unique(field: str, ids: list[str]) -> None:
    duplicates = sorted({item for item in ids if ids.count(item) > 1})
    if duplicates:
        raise ValueError(f"{field}: duplicate ids {duplicates}")


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from YAML (`.yaml`/`.yml`) or JSON; raise `ValueError` naming the bad field.

    A top-level `extends: default` (or a path relative to the file) starts from that scenario and
    replaces its top-level fields with the ones given here.
    """
    path = Path(path)
    try:
        return Scenario.model_validate(_read_with_base(path, depth=0))
    except ValueError as exc:
        raise ValueError(f"invalid scenario {path}:\n{exc}") from exc


def _read_with_base(path: Path, depth: int) -> dict[str, Any]:
    data = _read_mapping(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if depth >= 8:
        raise ValueError(f"scenario {path}: 'extends' nests too deeply")
    base_path = DEFAULT_SCENARIO_PATH if base == "default" else path.parent / str(base)
    return {**_read_with_base(base_path, depth + 1), **data}


def _read_mapping(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"scenario {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"scenario {path} must be a mapping at the top level")
    return data
