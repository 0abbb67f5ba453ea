"""POST /oauth/token: the client-credentials grant (OAuth-style error bodies, not ErrorBody)."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dataactions.emulator.access import emulator_state
from dataactions.emulator.errors import platform_error, too_many_requests
from dataactions.emulator.middleware import TOKEN_PATH
from dataactions.emulator.state import EmulatorState

__all__ = ["routes"]


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    body = {"error": error, "description": description, "error_description": description}
    return JSONResponse(body, status_code=status)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def _authenticated(credentials: tuple[str, str] | None, known: dict[str, str]) -> str | None:
    if credentials is None or credentials[0] not in known:
        return None
    client_id, secret = credentials
    return client_id if hmac.compare_digest(known[client_id].encode(), secret.encode()) else None


async def issue_token(request: Request) -> Response:
    state = emulator_state(request)
    _token_fault(state)
    client_id = _authenticated(_basic_credentials(request.headers.get("authorization")), state.credentials)
    if client_id is None:
        return _oauth_error(401, "invalid_client", "authentication failed")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if form.get("grant_type", [""])[0] != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant type not supported")
    token = state.issue_token(client_id)
    lifetime = int(state.scenario.token_lifetime_seconds)
    return JSONResponse({"access_token": token.value, "token_type": "bearer", "expires_in": lifetime})


def _token_fault(state: EmulatorState) -> None:
    """A scenario fault at endpoint `token` answers before the credentials are even read (the login service is
    down or throttling); `times` counts over all token requests."""
    attempt = sum(state.stats.token_responses.values()) + 1
    fault = state.faults.pick("", "token", {}, TOKEN_PATH, attempt)
    if fault is None:
        return
    assert fault.status is not None
    if fault.status == 429:
        raise too_many_requests(1 if fault.retry_after is None else fault.retry_after)
    raise platform_error(fault.status, fault.code, fault.message)


routes = [Route(TOKEN_PATH, issue_token, methods=["POST"])]
