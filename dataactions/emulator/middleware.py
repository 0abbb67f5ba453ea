"""Pure ASGI middleware: a correlation id on every response, response counters, last-resort 500."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataactions.emulator.errors import error_body
from dataactions.emulator.responses import DroppedConnection
from dataactions.emulator.state import EmulatorState

__all__ = ["ADMIN_PREFIX", "API_PREFIX", "CORRELATION_HEADER", "TOKEN_PATH", "CorrelationMiddleware", "correlation_id"]

ADMIN_PREFIX = "/__emulator__/"
API_PREFIX = "/api/"
TOKEN_PATH = "/oauth/token"
CORRELATION_HEADER = "ININ-Correlation-Id"
_HEADER_NAME = CORRELATION_HEADER.encode("ascii")
_log = logging.getLogger(__name__)


def correlation_id(scope: Scope) -> str:
    return scope.get("correlation_id", "")


class CorrelationMiddleware:
    """Sets `scope["correlation_id"]`, adds `ININ-Correlation-Id`, counts response statuses."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    def _counter(self, path: str) -> Callable[[int], None] | None:
        """API responses and token responses are counted apart; introspection and stray paths not at all."""
        if path.startswith(API_PREFIX):
            return self.state.stats.count_response
        if path == TOKEN_PATH:
            return self.state.stats.count_token_response
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = str(uuid.uuid4())
        scope["correlation_id"] = cid
        count = self._counter(scope["path"])
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (_HEADER_NAME, cid.encode("ascii"))]}
            elif count is not None and not message.get("more_body", False):
                count(status)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except DroppedConnection:
            self.state.stats.dropped_connections += 1
            raise
        except Exception:
            if status:
                raise
            _log.exception("emulator error")
            body = error_body(500, "internal.server.error", "The emulator failed to handle the request.", cid)
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
