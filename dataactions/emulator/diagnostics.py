"""`POST .../{actionId}/test`: the same run as execute, reported step by step (TestExecutionResult).

A remote failure is HTTP 200 with `success: false` and the failing step's ErrorBody (inferred,
genesys-api.md §1). Step names are the emulator's own; the real ones are not documented.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema

from dataactions.emulator.catalog import CatalogAction, action_config
from dataactions.emulator.contract import describe_violation, validate_input
from dataactions.emulator.errors import ApiError, remote_failure, remote_timeout
from dataactions.emulator.flatten import flatten
from dataactions.emulator.remote import Outcome, call_remote, remote_error
from dataactions.emulator.state import EmulatorState
from dataactions.emulator.tokens import Token

__all__ = ["STEPS", "run_test"]

STEPS = (
    "Validate input against schema",
    "Resolve request URL template",
    "Execute request",
    "Resolve translation map",
    "Validate output against schema",
)


class _Report:
    def __init__(self, context_id: str) -> None:
        self.context_id = context_id
        self.operations: list[dict[str, Any]] = []

    def passed(self, result: Any) -> None:
        self.operations.append(self._operation(True) | {"result": result})

    def failed(self, error: ApiError) -> dict[str, Any]:
        body = error.body(self.context_id)
        self.operations.append(self._operation(False) | {"error": body})
        return {"operations": self.operations, "error": body, "success": False}

    def succeeded(self, final: dict[str, Any]) -> dict[str, Any]:
        return {"operations": self.operations, "finalResult": final, "success": True}

    def _operation(self, success: bool) -> dict[str, Any]:
        step = len(self.operations) + 1
        return {"step": step, "name": STEPS[step - 1], "success": success}


async def run_test(
    state: EmulatorState,
    token: Token,
    action: CatalogAction,
    inputs: dict[str, Any],
    digest: str,
    flat: bool,
    context_id: str,
) -> dict[str, Any]:
    report = _Report(context_id)
    try:
        validate_input(action.validate_input, inputs)
    except ApiError as error:
        return report.failed(error)
    report.passed(inputs)
    report.passed({"requestUrl": action_config(action.spec)["request"]["requestUrlTemplate"]})
    attempt = state.stats.count_test(action.spec.id, digest)
    outcome = await call_remote(state, token, action, inputs, digest, attempt, "test")
    return _report_outcome(report, action, outcome, flat)


def _report_outcome(report: _Report, action: CatalogAction, outcome: Outcome, flat: bool) -> dict[str, Any]:
    remote_problem = _remote_problem(action, outcome)
    if remote_problem is not None:
        return report.failed(remote_problem)
    output = outcome.output or {}
    report.passed({"status": 200, "body": output})
    if outcome.fault is not None:
        return report.failed(_unparseable())
    report.passed(output)
    try:
        action.validate_output(output)
    except fastjsonschema.JsonSchemaValueException as exc:
        return report.failed(_schema_mismatch(*describe_violation(exc)))
    final = flatten(output) if flat else output
    report.passed(final)
    return report.succeeded(final)


def _remote_problem(action: CatalogAction, outcome: Outcome) -> ApiError | None:
    if outcome.timed_out:
        return remote_timeout(action.spec.timeout_seconds)
    if outcome.fault is None or outcome.fault.kind == "malformed_json":
        return None
    if outcome.fault.kind == "drop_connection":
        return remote_failure(502, message="The remote endpoint closed the connection before responding.")
    return remote_error(outcome.fault)


def _unparseable() -> ApiError:
    message = "Unable to parse the remote response as JSON."
    return ApiError(400, "bad.request", message, details=[{"errorCode": "ACTION.PROCESSING"}])


def _schema_mismatch(field: str, reason: str) -> ApiError:
    message = f"The translated response does not match the success schema: field '{field}' {reason}"
    return ApiError(400, "bad.request", message, details=[{"errorCode": "ACTION.PROCESSING", "fieldName": field}])
