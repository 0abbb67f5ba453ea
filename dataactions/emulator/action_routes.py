"""/api/v2/integrations/actions: list, get (expand=contract, includeConfig), execute, test."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dataactions.emulator.access import (
    admit,
    bool_param,
    emulator_state,
    execution_slot,
    int_param,
    json_object,
    read_body,
)
from dataactions.emulator.canonical import input_digest
from dataactions.emulator.catalog import ACTIONS_PATH, CatalogAction, action_entity, listing
from dataactions.emulator.contract import validate_input
from dataactions.emulator.diagnostics import run_test
from dataactions.emulator.errors import bad_request, not_found, remote_timeout
from dataactions.emulator.flatten import flatten
from dataactions.emulator.middleware import correlation_id
from dataactions.emulator.remote import Outcome, call_remote, remote_error
from dataactions.emulator.responses import DroppedResponse, malformed_json
from dataactions.emulator.scenario import ActionSpec
from dataactions.emulator.state import EmulatorState
from dataactions.emulator.tokens import Token

__all__ = ["routes"]

_MAX_IDS = 50
_SORT_FIELDS = {"id": "id", "name": "name", "category": "category", "version": "version", "secure": "secure"}


async def list_actions(request: Request) -> Response:
    state = emulator_state(request)
    admit(request, state)
    page_size = int_param(request, "pageSize", 25, 1, 500)
    page_number = int_param(request, "pageNumber", 1, 1, 1_000_000)
    specs = _sorted(request, _filtered(request, state.scenario.actions))
    params = {key: value for key, value in request.query_params.items() if key not in ("pageSize", "pageNumber")}
    config = bool_param(request, "includeConfig") or False
    return JSONResponse(listing(specs, page_size, page_number, params, config))


def _filtered(request: Request, specs: list[ActionSpec]) -> list[ActionSpec]:
    name = request.query_params.get("name", "").lower()
    category = request.query_params.get("category")
    secure = bool_param(request, "secure")
    ids = _ids(request)
    return [
        spec
        for spec in specs
        if name in spec.name.lower()
        and (category is None or spec.category == category)
        and (secure is None or spec.secure == secure)
        and (ids is None or spec.id in ids)
    ]


def _ids(request: Request) -> set[str] | None:
    raw = request.query_params.get("ids")
    if not raw:
        return None
    ids = {item.strip() for item in raw.split(",") if item.strip()}
    if len(ids) > _MAX_IDS:
        raise bad_request(f"At most {_MAX_IDS} ids may be requested at once.", "ids")
    return ids


def _sorted(request: Request, specs: list[ActionSpec]) -> list[ActionSpec]:
    sort_by = request.query_params.get("sortBy")
    if sort_by is None:
        return specs
    if sort_by not in _SORT_FIELDS:
        raise bad_request(f"Cannot sort by {sort_by!r}; use one of {', '.join(_SORT_FIELDS)}.", "sortBy")
    descending = request.query_params.get("sortOrder", "ASC").upper() == "DESC"
    return sorted(specs, key=lambda spec: getattr(spec, _SORT_FIELDS[sort_by]), reverse=descending)


def _action(state: EmulatorState, request: Request) -> CatalogAction:
    action_id = request.path_params["action_id"]
    action = state.catalog.get(action_id)
    if action is None:
        raise not_found(f"action '{action_id}'")
    return action


async def get_action(request: Request) -> Response:
    state = emulator_state(request)
    admit(request, state)
    action = _action(state, request)
    contract = "contract" in request.query_params.get("expand", "").split(",")
    config = bool_param(request, "includeConfig") or False
    return JSONResponse(action_entity(action.spec, contract=contract, config=config))


async def _admitted_call(request: Request) -> tuple[EmulatorState, Token, CatalogAction, bool, dict[str, Any]]:
    """What execute and test share: the token admitted, the action found, the flag read, the body parsed."""
    state = emulator_state(request)
    token = admit(request, state)
    action = _action(state, request)
    flat = bool_param(request, "flatten") or False
    return state, token, action, flat, json_object(await read_body(request, state.scenario.max_body_bytes))


async def execute(request: Request) -> Response:
    state, token, action, flat, inputs = await _admitted_call(request)
    with execution_slot(state, token):
        digest = input_digest(inputs)
        attempt = state.stats.count_execution(action.spec.id, digest)
        validate_input(action.validate_input, inputs)
        outcome = await call_remote(state, token, action, inputs, digest, attempt, "execute")
    return _execute_response(action, outcome, flat)


def _execute_response(action: CatalogAction, outcome: Outcome, flat: bool) -> Response:
    if outcome.timed_out:
        raise remote_timeout(action.spec.timeout_seconds)
    fault, output = outcome.fault, outcome.output or {}
    if fault is None:
        return JSONResponse(flatten(output) if flat else output)
    if fault.kind == "malformed_json":
        return malformed_json(output)
    if fault.kind == "drop_connection":
        return DroppedResponse()
    raise remote_error(fault)


async def test_action(request: Request) -> Response:
    state, token, action, flat, inputs = await _admitted_call(request)
    with execution_slot(state, token):
        result: dict[str, Any] = await run_test(
            state, token, action, inputs, input_digest(inputs), flat, correlation_id(request.scope)
        )
    return JSONResponse(result)


routes = [
    Route(ACTIONS_PATH + "/{action_id}/execute", execute, methods=["POST"]),
    Route(ACTIONS_PATH + "/{action_id}/test", test_action, methods=["POST"]),
    Route(ACTIONS_PATH + "/{action_id}", get_action, methods=["GET"]),
    Route(ACTIONS_PATH, list_actions, methods=["GET"]),
]
