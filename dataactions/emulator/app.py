"""create_app: the Starlette application serving token, API and introspection on one base URL."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dataactions.emulator import action_routes, admin_routes, auth_routes, flow_routes
from dataactions.emulator.errors import ApiError, platform_error
from dataactions.emulator.middleware import CorrelationMiddleware, correlation_id
from dataactions.emulator.responses import silence_dropped_connections
from dataactions.emulator.scenario import Scenario
from dataactions.emulator.state import EmulatorState

__all__ = ["create_app"]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(correlation_id(request.scope)), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return await _api_error(request, platform_error(exc.status_code))


def create_app(scenario: Scenario) -> Starlette:
    """An emulator for `scenario`; its state is `app.state.emulator`."""
    state = EmulatorState(scenario)
    app = Starlette(
        routes=[*action_routes.routes, *flow_routes.routes, *auth_routes.routes, *admin_routes.routes],
        middleware=[Middleware(CorrelationMiddleware, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = state
    silence_dropped_connections()
    return app
