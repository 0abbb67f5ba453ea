"""Architect workflow executions: launched, RUNNING for the flow's duration, then an outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dataactions.emulator.errors import error_body
from dataactions.emulator.faults import matches
from dataactions.emulator.generators import GENERATORS
from dataactions.emulator.scenario import WorkflowOutcome, WorkflowSpec

__all__ = ["EXECUTIONS_PATH", "FlowExecution", "WorkflowStore", "launch_response", "outcome_for", "runtime_view"]

EXECUTIONS_PATH = "/api/v2/flows/executions"

_FAILURES: dict[str, tuple[str, str]] = {
    "FAILED": ("flow.execution.failed", "The workflow reached a failure path."),
    "ERROR": ("flow.execution.error", "The workflow stopped on an unhandled error."),
}


@dataclass(slots=True)
class FlowExecution:
    id: str
    name: str
    spec: WorkflowSpec
    inputs: dict[str, Any]
    outcome: WorkflowOutcome
    started: float
    launched: datetime


class WorkflowStore:
    def __init__(self) -> None:
        self._executions: dict[str, FlowExecution] = {}

    def launch(self, spec: WorkflowSpec, inputs: dict[str, Any], name: str | None, now: float) -> FlowExecution:
        execution_id = str(uuid.uuid4())
        execution = FlowExecution(
            execution_id, name or spec.name, spec, inputs, outcome_for(spec, inputs), now, datetime.now(UTC)
        )
        self._executions[execution_id] = execution
        return execution

    def get(self, execution_id: str) -> FlowExecution | None:
        return self._executions.get(execution_id)


def outcome_for(spec: WorkflowSpec, inputs: dict[str, Any]) -> WorkflowOutcome:
    """The first `outcomes_by_input` rule that matches the input, else the flow's `outcome`."""
    rule = next((rule for rule in spec.outcomes_by_input if matches(rule.match, inputs)), None)
    return rule.outcome if rule else spec.outcome


def _flow_version(spec: WorkflowSpec) -> dict[str, Any]:
    return {
        "id": spec.flow_version,
        "name": spec.flow_version,
        "selfUri": f"/api/v2/flows/{spec.flow_id}/versions/{spec.flow_version}",
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def launch_response(execution: FlowExecution) -> dict[str, Any]:
    """FlowExecutionLaunchResponse."""
    return {
        "id": execution.id,
        "name": execution.name,
        "flowVersion": _flow_version(execution.spec),
        "selfUri": f"{EXECUTIONS_PATH}/{execution.id}",
    }


def runtime_view(execution: FlowExecution, now: float) -> dict[str, Any]:
    """FlowRuntimeExecution as of `now` (same clock as the launch)."""
    view = {**launch_response(execution), "dateLaunched": _iso(execution.launched), "status": "RUNNING"}
    finished = now - execution.started >= execution.spec.duration_seconds
    if not finished or execution.outcome == "RUNNING":
        return view
    view["status"] = execution.outcome
    view["dateCompleted"] = _iso(execution.launched + timedelta(seconds=execution.spec.duration_seconds))
    view.update(_result(execution))
    return view


def _result(execution: FlowExecution) -> dict[str, Any]:
    if execution.outcome == "COMPLETED":
        return {"completionReason": "Completed", "outputData": GENERATORS[execution.spec.output](execution.inputs)}
    code, message = _FAILURES[execution.outcome]
    return {
        "completionReason": execution.outcome.capitalize(),
        "flowErrorInfo": error_body(500, code, message, execution.id),
    }
