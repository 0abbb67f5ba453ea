"""Scenario files: the packaged default, the demo, and errors that name the offending field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dataactions.emulator import DEFAULT_SCENARIO_PATH, Scenario, load_scenario

REPO = Path(__file__).resolve().parents[3]


def _with(**changes: Any) -> dict[str, Any]:
    return {**Scenario.default().model_dump(mode="json"), **changes}


def _first_action(**changes: Any) -> dict[str, Any]:
    data = Scenario.default().model_dump(mode="json")
    data["actions"][0].update(changes)
    return data


def test_the_default_scenario_has_the_documented_catalog() -> None:
    scenario = Scenario.default()
    assert DEFAULT_SCENARIO_PATH.name == "default.yaml"
    assert {action.output for action in scenario.actions} >= {"customer_by_phone", "order_status"}
    assert any(action.secure for action in scenario.actions)
    assert scenario.rate_limit is not None and (scenario.rate_limit.requests, scenario.rate_limit.per_seconds) == (
        300,
        60,
    )
    assert [flow.flow_id for flow in scenario.workflows] == ["wf-enrich-customer"]


def test_the_demo_scenario_extends_the_default_without_a_real_rate_limit() -> None:
    demo = load_scenario(REPO / "data" / "emulator" / "demo.yaml")
    assert [action.id for action in demo.actions] == [action.id for action in Scenario.default().actions]
    assert demo.rate_limit is not None and demo.rate_limit.requests >= 100_000
    assert any(fault.times == 1 and fault.status == 503 for fault in demo.faults)


def test_a_json_scenario_loads_like_yaml(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(Scenario.default().model_dump_json(), encoding="utf-8")
    assert load_scenario(path) == Scenario.default()


def test_a_bare_number_is_a_fixed_latency() -> None:
    latency = Scenario.model_validate(_with(latency=120)).latency
    assert (latency.distribution, latency.ms) == ("fixed", 120)


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (_with(rate_limt={"requests": 1, "per_seconds": 1}), "rate_limt", "Extra inputs are not permitted"),
        (_first_action(output="no_such_generator"), "actions.0.output", "unknown output generator"),
        (
            _first_action(input_schema={"type": "object", "properties": {"a": {"type": "nonsense"}}}),
            "actions.0.input_schema",
            "not a valid JSON Schema",
        ),
        (_first_action(input_schema={"type": "array"}), "actions.0.input_schema", "type 'object'"),
        (_first_action(timeout_seconds=0), "actions.0.timeout_seconds", "greater than 0"),
        (_with(faults=[{"kind": "status"}]), "faults.0", "needs a 'status'"),
        (_with(faults=[{"kind": "timeout", "action": "custom_-_nope"}]), "faults.0.action", "unknown action"),
        (_with(faults=[{"kind": "status", "status": 503, "rate": 1.5}]), "faults.0.rate", "less than or equal to 1"),
        (_with(latency={"distribution": "uniform", "min_ms": 5}), "latency", "needs max_ms"),
        (_with(actions=[*_with()["actions"], _with()["actions"][0]]), "actions", "duplicate ids"),
    ],
)
def test_an_invalid_scenario_names_the_field_and_the_reason(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate(data)
    message = str(caught.value)
    assert field in message and reason in message


def test_load_scenario_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("extends: default\ntoken_lifetime_seconds: -5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml.*token_lifetime_seconds"):
        load_scenario(path)


def test_load_scenario_rejects_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("actions: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_scenario(path)
