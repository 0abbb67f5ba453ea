"""One exception tree for dataactions.

    DataActionsError
    ├── ConfigurationError        [terminal]  a bad setting, mapping or scenario; raised before any row is sent
    ├── RowRejected               [terminal]  one input row broke the file format or the action's contract
    ├── ApiError                              Genesys answered with an error (ErrorBody parsed)
    │   ├── AuthenticationError   [terminal]  401 that survived one token renewal, or a refused token request
    │   ├── BadRequestError       [terminal]  400 / 413 / other 4xx
    │   ├── NotFoundError         [terminal]  404
    │   ├── RateLimitedError      [transient] 429, carries `retry_after`
    │   ├── RemoteEndpointError   [terminal]  500: the action's remote endpoint failed (ACTION.REMOTE_ENDPOINT)
    │   └── ServiceUnavailableError [transient] 502, 503, 504
    ├── TransportError            [transient] no HTTP answer: refused or dropped connections, timeouts
    │   └── ResponseTimeout                   no answer in time; the server may have acted on it
    ├── MalformedResponseError    [transient] an answer that is not the JSON object promised
    ├── WorkflowError             [terminal]  a workflow execution ended FAILED / ERROR / TERMINATED
    │   └── WorkflowDeadlineExceeded          it was still running when its deadline passed
    ├── HealthCheckFailed         [terminal]  the start-of-run check failed: nothing was sent
    ├── CircuitOpenError          [terminal]  the breaker stopped the run: the remote looks down
    ├── RunStopped                [terminal]  the run stopped itself: its failed-row ceiling was passed
    └── RateBudgetSpent           [terminal]  the local rate limiter would hold a request longer than its caller
                                              allows (`limits.bounded_wait`, the real-time endpoint); carries
                                              `retry_after`; nothing was sent

`transient` is the default classification; a `RetryPolicy` may widen or narrow it (the retryable status set is a
setting). Messages never carry secrets or raw input values: they name rows by key and fields by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "DataActionsError",
    "ErrorDetails",
    "HealthCheckFailed",
    "MalformedResponseError",
    "NotFoundError",
    "RateBudgetSpent",
    "RateLimitedError",
    "RemoteEndpointError",
    "ResponseTimeout",
    "RowRejected",
    "RunStopped",
    "ServiceUnavailableError",
    "TransportError",
    "WorkflowDeadlineExceeded",
    "WorkflowError",
    "api_error_from_response",
]


class DataActionsError(Exception):
    """Base of every error raised by dataactions."""

    transient: ClassVar[bool] = False
    code: str = "error"


class ConfigurationError(DataActionsError):
    code = "configuration"


class RowRejected(DataActionsError):
    """An input row that is never sent: names the row, the field and what was expected."""

    code = "rejected"

    def __init__(self, row_key: str, field_name: str | None, expected: str) -> None:
        self.row_key = row_key
        self.field_name = field_name
        self.expected = expected
        where = f"field '{field_name}'" if field_name else "row"
        super().__init__(f"row {row_key}: {where}: {expected}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.row_key, self.field_name, self.expected)


@dataclass(frozen=True)
class ErrorDetails:
    """What Genesys said about a failure, parsed from its ErrorBody (no request data)."""

    status: int
    code: str = ""
    message: str = ""
    correlation_id: str | None = None
    error_codes: tuple[str, ...] = ()
    nested_messages: tuple[str, ...] = ()
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(self.code)
        if self.error_codes:
            parts.append("/".join(self.error_codes))
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        for nested in self.nested_messages:
            text += f" | {nested}"
        if self.correlation_id:
            text += f" (correlation id {self.correlation_id})"
        return text


class ApiError(DataActionsError):
    """Genesys answered with an error status."""

    def __init__(self, details: ErrorDetails) -> None:
        self.details = details
        super().__init__(details.describe())

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.details,)

    @property
    def status(self) -> int:
        return self.details.status

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.details.code or f"http.{self.details.status}"

    @property
    def correlation_id(self) -> str | None:
        return self.details.correlation_id


class AuthenticationError(ApiError):
    pass


class BadRequestError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class RateLimitedError(ApiError):
    transient = True

    @property
    def retry_after(self) -> float | None:
        return self.details.retry_after


class RemoteEndpointError(ApiError):
    pass


class ServiceUnavailableError(ApiError):
    transient = True


class TransportError(DataActionsError):
    """No HTTP answer. `may_have_reached_server` is False only when the request surely never left."""

    transient = True
    code = "transport"

    def __init__(self, message: str, *, may_have_reached_server: bool = True) -> None:
        self.may_have_reached_server = may_have_reached_server
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_transport_error, (type(self), str(self), self.may_have_reached_server)


class ResponseTimeout(TransportError):
    code = "timeout"


class MalformedResponseError(DataActionsError):
    transient = True
    code = "malformed.response"


class WorkflowError(DataActionsError):
    code = "workflow.failed"

    def __init__(self, execution_id: str, status: str, reason: str = "") -> None:
        self.execution_id = execution_id
        self.status = status
        self.reason = reason
        suffix = f": {reason}" if reason else ""
        super().__init__(f"workflow execution {execution_id} ended {status}{suffix}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.execution_id, self.status, self.reason)


class WorkflowDeadlineExceeded(WorkflowError):
    code = "workflow.deadline"

    def __init__(self, execution_id: str, status: str, reason: str = "") -> None:
        super().__init__(execution_id, status, reason)
        suffix = f" ({reason})" if reason else ""
        self.args = (f"workflow execution {execution_id} was still {status} when its deadline passed{suffix}",)


class HealthCheckFailed(DataActionsError):
    code = "health.check"


class CircuitOpenError(DataActionsError):
    code = "circuit.open"


class RunStopped(DataActionsError):
    code = "run.stopped"


class RateBudgetSpent(DataActionsError):
    code = "rate.budget"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(0.0, retry_after)
        super().__init__(f"the local rate budget is spent: the next request may leave in {self.retry_after:.1f} s")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.retry_after,)


def _rebuild_transport_error(cls: type[TransportError], message: str, sent: bool) -> TransportError:
    return cls(message, may_have_reached_server=sent)


_STATUS_CLASSES: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitedError,
    500: RemoteEndpointError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def api_error_from_response(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> ApiError:
    """Build the right ApiError from a status, a decoded ErrorBody (or anything else) and the headers."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    details = _parse_error_body(status, body, headers)
    cls = _STATUS_CLASSES.get(status, BadRequestError if 400 <= status < 500 else ServiceUnavailableError)
    return cls(details)


def _parse_error_body(status: int, body: Any, headers: dict[str, str]) -> ErrorDetails:
    body = body if isinstance(body, dict) else {}
    return ErrorDetails(
        status=status,
        code=str(body.get("code") or body.get("error") or ""),
        message=str(body.get("message") or body.get("description") or ""),
        correlation_id=headers.get("inin-correlation-id") or body.get("contextId"),
        error_codes=_detail_codes(body.get("details")),
        nested_messages=_nested_messages(body.get("errors")),
        retry_after=_retry_after(headers.get("retry-after")),
    )


def _detail_codes(details: Any) -> tuple[str, ...]:
    if not isinstance(details, Sequence):
        return ()
    return tuple(str(d["errorCode"]) for d in details if isinstance(d, dict) and d.get("errorCode"))


def _nested_messages(errors: Any) -> tuple[str, ...]:
    if not isinstance(errors, Sequence):
        return ()
    return tuple(str(e["message"]) for e in errors if isinstance(e, dict) and e.get("message"))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
