"""ErrorBody builders: every error the emulator answers, in the public Genesys `ErrorBody` shape.

`ApiError` is raised by handlers and rendered by one exception handler, which adds the request's
correlation id as `contextId`. Messages of nested remote errors end with `[<correlationId>]`,
as the real payloads do (genesys-api.md §2.3).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REMOTE_ENDPOINT",
    "REMOTE_STATUSES",
    "ApiError",
    "authentication_required",
    "bad_credentials",
    "bad_request",
    "contract_violation",
    "error_body",
    "for_status",
    "not_found",
    "payload_too_large",
    "platform_error",
    "remote_failure",
    "remote_timeout",
    "too_many_requests",
]

REMOTE_ENDPOINT = "ACTION.REMOTE_ENDPOINT"
_CONTEXT = "{contextId}"

_REMOTE_DEFAULTS: dict[int, tuple[str, str, str, str]] = {
    400: (
        "bad.request",
        "The request could not be understood by the server due to malformed syntax.",
        "BAD_REQUEST",
        "Request to backend service failed. To see error details, use test mode to execute "
        "the action, or execute request in Postman or other REST tools.",
    ),
    500: (
        "internal.server.error",
        "Internal Server Error",
        "INTERNAL_SERVER_ERROR",
        'Request to backend service failed. Response from web service: {"error":"internal error"}',
    ),
    502: ("bad.gateway", "Bad Gateway", "BAD_GATEWAY", "Request to backend service failed: bad gateway."),
    504: ("request.timeout", "The request timed out.", "REQUEST_TIMEOUT", "Request to backend service timed out."),
}

REMOTE_STATUSES = frozenset(_REMOTE_DEFAULTS)
"""Statuses an injected fault answers as a remote failure (ACTION.REMOTE_ENDPOINT); others are platform errors."""

_PLATFORM_DEFAULTS: dict[int, tuple[str, str]] = {
    401: ("bad.credentials", "Invalid login credentials."),
    403: ("missing.permissions", "You are missing the permissions required for this operation."),
    404: ("not.found", "The requested resource was not found."),
    405: ("method.not.allowed", "The request method is not allowed for this resource."),
    408: ("request.timeout", "The request timed out."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    415: ("unsupported.media.type", "Unsupported media type."),
    503: (
        "service.unavailable",
        "Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).",
    ),
}


class ApiError(Exception):
    """An HTTP error answered as an ErrorBody. `"{contextId}"` in nested messages becomes the correlation id."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, context_id: str) -> dict[str, Any]:
        errors = [_with_context(error, context_id) for error in self.errors]
        return error_body(self.status, self.code, self.message, context_id, details=self.details, errors=errors)


def error_body(
    status: int,
    code: str,
    message: str,
    context_id: str,
    *,
    details: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "message": message,
        "code": code,
        "status": status,
        "messageWithParams": message,
        "messageParams": {},
        "contextId": context_id,
        "details": details or [],
        "errors": errors or [],
    }


def _with_context(error: dict[str, Any], context_id: str) -> dict[str, Any]:
    return {**error, "message": error["message"].replace(_CONTEXT, context_id)}


def _nested(status: int, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "status": status, "messageParams": {}, "details": [], "errors": []}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not.found", f"The requested {what} was not found.")


def bad_request(message: str, field: str | None = None) -> ApiError:
    details = [{"errorCode": "BAD_REQUEST", "fieldName": field}] if field else []
    return ApiError(400, "bad.request", message, details=details)


def contract_violation(field: str, reason: str) -> ApiError:
    """400 for an input that breaks the action's input contract; the message names field and reason."""
    message = f"Input failed the action's input contract: field '{field}' {reason}"
    return ApiError(400, "bad.request", message, details=[{"errorCode": "ACTION.INPUT_VALIDATION", "fieldName": field}])


def authentication_required() -> ApiError:
    return ApiError(401, "authentication.required", "No authentication bearer token specified in authorization header.")


def bad_credentials() -> ApiError:
    return ApiError(401, "bad.credentials", "Invalid login credentials.")


def payload_too_large(limit: int) -> ApiError:
    message = f"The request is over the size limit. Maximum bytes: {limit}"
    return ApiError(413, "request.entity.too.large", message)


def too_many_requests(retry_after: int) -> ApiError:
    message = f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
    return ApiError(429, "too.many.requests.retry.after", message, headers={"Retry-After": str(retry_after)})


def remote_failure(status: int, code: str | None = None, message: str | None = None) -> ApiError:
    """A failed remote call: top-level public code, `ACTION.REMOTE_ENDPOINT`, nested legacy-style error."""
    top_code, top_message, nested_code, nested_message = _REMOTE_DEFAULTS.get(status, _REMOTE_DEFAULTS[500])
    nested_text = f"REST call for action execute failed. Message: {message or nested_message} [{_CONTEXT}]"
    return ApiError(
        status,
        code or top_code,
        top_message,
        details=[{"errorCode": REMOTE_ENDPOINT}],
        errors=[_nested(status, nested_code, nested_text)],
    )


def remote_timeout(timeout_seconds: float) -> ApiError:
    reason = f"Request to backend service timed out after {timeout_seconds:g} seconds."
    return remote_failure(504, "request.timeout", reason)


def platform_error(status: int, code: str | None = None, message: str | None = None) -> ApiError:
    """A platform-side error (no remote details): 503 service.unavailable, 401, 404..."""
    default_code, default_message = _PLATFORM_DEFAULTS.get(status, ("server.error", f"HTTP {status}"))
    return ApiError(status, code or default_code, message or default_message)


def for_status(
    status: int, code: str | None = None, message: str | None = None, retry_after: int | None = None
) -> ApiError:
    """The error an injected `status` fault answers: 429 throttle, remote failure, or platform error."""
    if status == 429:
        return too_many_requests(1 if retry_after is None else retry_after)
    if status in REMOTE_STATUSES:
        return remote_failure(status, code, message)
    return platform_error(status, code, message)
