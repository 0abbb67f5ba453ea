"""/__emulator__/: introspection and runtime control (no auth; loopback only)."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dataactions.emulator.access import bool_param, emulator_state, json_object
from dataactions.emulator.errors import bad_request
from dataactions.emulator.middleware import ADMIN_PREFIX

__all__ = ["routes"]


async def stats(request: Request) -> Response:
    include_inputs = bool_param(request, "inputs")
    return JSONResponse(emulator_state(request).snapshot(include_inputs is not False))


async def reset(request: Request) -> Response:
    emulator_state(request).reset()
    return JSONResponse({"reset": True})


async def configure(request: Request) -> Response:
    patch = json_object(await request.body())
    try:
        scenario = emulator_state(request).configure(patch)
    except ValidationError as exc:
        raise bad_request(f"Invalid emulator configuration: {exc}") from None
    return JSONResponse({"scenario": scenario.model_dump(mode="json")})


async def revoke(request: Request) -> Response:
    return JSONResponse({"revoked": emulator_state(request).tokens.revoke_all()})


async def tokens(request: Request) -> Response:
    issued = emulator_state(request).tokens.issued
    return JSONResponse({"tokens": [{"client_id": client, "access_token": value} for client, value in issued]})


async def scenario(request: Request) -> Response:
    return Response(emulator_state(request).scenario.model_dump_json(), media_type="application/json")


routes = [
    Route(ADMIN_PREFIX + "stats", stats, methods=["GET"]),
    Route(ADMIN_PREFIX + "reset", reset, methods=["POST"]),
    Route(ADMIN_PREFIX + "configure", configure, methods=["POST"]),
    Route(ADMIN_PREFIX + "revoke", revoke, methods=["POST"]),
    Route(ADMIN_PREFIX + "scenario", scenario, methods=["GET"]),
    Route(ADMIN_PREFIX + "tokens", tokens, methods=["GET"]),
]
