"""/api/v2/flows/executions: launch a workflow, then poll it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dataactions.emulator.access import admit, emulator_state, json_object, read_body
from dataactions.emulator.errors import bad_request, not_found
from dataactions.emulator.workflows import EXECUTIONS_PATH, launch_response, runtime_view

__all__ = ["routes"]


async def launch(request: Request) -> Response:
    state = emulator_state(request)
    admit(request, state)
    body = json_object(await read_body(request, state.scenario.max_body_bytes))
    flow_id, input_data, name = body.get("flowId"), body.get("inputData") or {}, body.get("name")
    if not isinstance(flow_id, str) or not flow_id:
        raise bad_request("flowId is required.", "flowId")
    if not isinstance(input_data, dict):
        raise bad_request("inputData must be a JSON object.", "inputData")
    spec = state.flows.get(flow_id)
    if spec is None:
        raise not_found(f"flow '{flow_id}'")
    execution = state.workflows.launch(spec, input_data, name if isinstance(name, str) else None, state.clock())
    state.stats.workflow_launches += 1
    return JSONResponse(launch_response(execution))


async def get_execution(request: Request) -> Response:
    state = emulator_state(request)
    admit(request, state)
    execution_id = request.path_params["execution_id"]
    execution = state.workflows.get(execution_id)
    if execution is None:
        raise not_found(f"flow execution '{execution_id}'")
    state.stats.workflow_polls += 1
    return JSONResponse(runtime_view(execution, state.clock()))


routes = [
    Route(EXECUTIONS_PATH, launch, methods=["POST"]),
    Route(EXECUTIONS_PATH + "/{execution_id}", get_execution, methods=["GET"]),
]
