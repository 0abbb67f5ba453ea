"""Request admission shared by the API handlers: size, bearer token, rate limit, body, query parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request

from dataactions.emulator.errors import (
    authentication_required,
    bad_credentials,
    bad_request,
    payload_too_large,
    too_many_requests,
)
from dataactions.emulator.limits import arrived_too_early, record_throttle, retry_after_seconds
from dataactions.emulator.state import EmulatorState
from dataactions.emulator.tokens import Token

__all__ = [
    "admit",
    "bool_param",
    "emulator_state",
    "execution_slot",
    "int_param",
    "json_object",
    "read_body",
]


def emulator_state(request: Request) -> EmulatorState:
    return request.app.state.emulator


def admit(request: Request, state: EmulatorState) -> Token:
    """Check the declared size, the bearer token and the token's rate window; return the token."""
    _check_declared_size(request, state.scenario.max_body_bytes)
    now = state.clock()
    token = _authenticate(request.headers.get("authorization"), state, now)
    if arrived_too_early(token, now, state.scenario.retry_after_grace_seconds):
        state.stats.requests_before_retry_after += 1
    free_at = state.limiter.admit(token, now)
    if free_at is not None:
        record_throttle(token, now, free_at)
        raise too_many_requests(retry_after_seconds(free_at, now))
    state.stats.count_admitted(token.client_id, now, state.rate_window_seconds)
    return token


def _check_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise payload_too_large(limit)


def _authenticate(header: str | None, state: EmulatorState, now: float) -> Token:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise authentication_required()
    token = state.tokens.lookup(value.strip(), now)
    if token is None:
        raise bad_credentials()
    return token


@contextmanager
def execution_slot(state: EmulatorState, token: Token) -> Iterator[None]:
    """Hold one of the org's concurrent executions, or answer 429."""
    if not state.gate.try_enter():
        state.stats.concurrency_limited += 1
        now, wait = state.clock(), state.scenario.concurrent_retry_after_seconds
        record_throttle(token, now, now + wait)
        raise too_many_requests(wait)
    try:
        yield
    finally:
        state.gate.leave()


async def read_body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise payload_too_large(limit)
    return body


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request("The request body must be a JSON object.")
    return value


def bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"Query parameter '{name}' must be true or false, not {raw!r}.", name)
    return raw.lower() == "true"


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad_request(f"Query parameter '{name}' must be an integer from {low} to {high}, not {raw!r}.", name)
    return int(raw)
