"""Responses that are not plain JSON: a truncated JSON body and a connection dropped mid-response."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["DroppedConnection", "DroppedResponse", "malformed_json", "silence_dropped_connections"]


class DroppedConnection(Exception):
    """Raised after a partial response so uvicorn closes the connection (a client sees a protocol error)."""


class DroppedResponse(Response):
    """Sends headers announcing a body, part of that body, then aborts the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1024")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise DroppedConnection("emulated connection drop")


def malformed_json(output: dict[str, Any]) -> Response:
    """200 whose JSON body is cut in half (never valid JSON)."""
    text = json.dumps(output, separators=(",", ":"))
    return Response(text[: max(1, len(text) // 2)], status_code=200, media_type="application/json")


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def silence_dropped_connections() -> None:
    """Keep uvicorn from logging a traceback for each intentional drop (other errors still log)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _DropFilter) for existing in logger.filters):
        logger.addFilter(_DropFilter())
