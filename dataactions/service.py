"""The real-time endpoint: enrich one row over HTTP, through the same client, limits, retry policy, circuit
breaker, metrics and audit as the batch path (`dataactions serve`).

    POST /enrich   {"action_id": "custom_-_abc", "input": {"phoneNumber": "+3531..."}, "mapping": "customer"}
      200 {"status": "succeeded", "row": {mapped columns}, "raw": {answer}, "attempts": 1, "correlation_id": "..."}
    GET  /healthz  200 {"status": "ok", ...} when a token can be had; 503 otherwise

`action_id` may be left out when the service serves one action; `mapping` names `<mappings-dir>/<name>.yaml`
(default: the `--mapping` file, else no mapped columns). `raw` is left out for `secure` actions. Every error is
`{"error": {"code", "message", "field"?, "correlation_id"?}}`:

| status | code                   | when                                                                       |
|--------|------------------------|----------------------------------------------------------------------------|
| 400    | `invalid_json`         | the body is not JSON                                                       |
| 400    | `invalid_request`      | the body is not the object above (`field` names what)                      |
| 400    | `invalid_input`        | the input breaks the action's contract (`field`, what it expected)         |
| 400    | `rejected_by_action`   | Genesys refused the input (400/413)                                        |
| 404    | `unknown_action`       | an action this service does not serve, or that Genesys does not know       |
| 404    | `unknown_mapping`      | no such mapping in the mappings directory                                  |
| 413    | `payload_too_large`    | a body over 1 MiB                                                          |
| 429    | `rate_limited`         | the rate budget is spent (see below), or Genesys kept answering 429        |
| 502    | `remote_failure`       | the action or Genesys failed (5xx, dropped connection, refused login)      |
| 502    | `unexpected_answer`    | the answer does not fit the mapping                                        |
| 503    | `circuit_open`         | recent calls failed as if the remote were down (a cool-down runs)          |
| 504    | `upstream_timeout`     | Genesys or the action timed out                                            |
| 504    | `timeout`              | no outcome within `timeout_seconds`                                        |

429 and 503 carry `Retry-After` (seconds). A request never waits in the rate limiter longer than
`max_wait_seconds` (`limits.bounded_wait`): it is answered 429 with the seconds until a slot frees instead; a 429
from Genesys is waited out only when its Retry-After fits that bound too. Waits for a concurrency slot are bounded
by `timeout_seconds` (then 504). Contracts are fetched once per action (at start, again on use if that failed)
and kept.

Audit: each request that reached the action, or was rejected by its contract, becomes one audit row (the
`AUDIT_SCHEMA` of the batch path; `row_key` is the request id, echoed in the `X-Request-Id` header, which a caller
may set). Rows are buffered and committed as small Parquet parts via `PartStore` (temporary file, then rename)
every `audit_rows` requests or `audit_seconds` seconds, whichever comes first, and at shutdown, under
`<output>/audit/run_id=serve-<UTC date>/part-<UTC time>-<instance>-<n>.parquet`. A crash loses at most the
buffered rows; a committed part is never rewritten.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataactions.audit import AUDIT_SCHEMA, build_audit_table, input_hmac
from dataactions.breaker import CircuitBreaker
from dataactions.client import GenesysClient
from dataactions.contracts import InputContract
from dataactions.errors import (
    CircuitOpenError,
    ConfigurationError,
    DataActionsError,
    HealthCheckFailed,
    NotFoundError,
    RateBudgetSpent,
    RowRejected,
)
from dataactions.invoke import Invocation, Invoker
from dataactions.job import settings_with_credentials
from dataactions.limits import bounded_wait
from dataactions.mapping import Mapping
from dataactions.normalize import normalize_batch
from dataactions.retry import RetryPolicy
from dataactions.settings import Settings
from dataactions.sink import PartStore
from dataactions.telemetry import Metrics, metrics_from_settings

__all__ = ["EnrichService", "ServiceConfig", "ServiceError", "ServiceServer", "create_app", "serve"]

log = logging.getLogger("dataactions.service")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_REQUEST_FIELDS = frozenset({"action_id", "input", "mapping"})


@dataclass(frozen=True)
class ServiceConfig:
    """What `dataactions serve` serves, and how patiently."""

    actions: tuple[str, ...]
    mapping_path: str | None = None
    mappings_dir: str | None = None
    output_dir: str | None = None
    max_wait_seconds: float = 1.0
    timeout_seconds: float = 30.0
    audit_rows: int = 100
    audit_seconds: float = 5.0
    breaker_cooldown_seconds: float = 30.0
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if not self.actions:
            raise ConfigurationError("serve needs at least one --action to serve")
        if self.max_wait_seconds < 0 or self.timeout_seconds <= 0:
            raise ConfigurationError("--max-wait must be >= 0 and --timeout > 0 seconds")


class ServiceError(Exception):
    """An answer other than 200, with the JSON error body it is sent as."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 correlation_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.correlation_id, self.retry_after = field, correlation_id, retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.correlation_id:
            error["correlation_id"] = self.correlation_id
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


@dataclass
class _Action:
    contract: InputContract
    secure: bool


class Mappings:
    """The default mapping (`--mapping`) and the named ones (`--mappings-dir`), all loaded at start."""

    def __init__(self, default: str | None, directory: str | None) -> None:
        self.default = Mapping.load(default) if default else Mapping.identity()
        self.named: dict[str, Mapping] = {}
        if directory:
            folder = Path(directory)
            if not folder.is_dir():
                raise ConfigurationError(f"mappings directory {directory!r} does not exist")
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                if path.stem in self.named:
                    raise ConfigurationError(f"mapping {path.stem!r} is in {folder} twice (.yaml and .yml)")
                self.named[path.stem] = Mapping.load(path)

    def get(self, name: Any) -> Mapping:
        if name is None:
            return self.default
        if not isinstance(name, str):
            raise ServiceError(400, "invalid_request", "'mapping' must be the name of a mapping file, "
                                                       "without directory or extension", field="mapping")
        found = self.named.get(name) if _NAME.match(name) else None
        if found is None:
            known = ", ".join(sorted(self.named)) or "none: start the service with --mappings-dir"
            raise ServiceError(404, "unknown_mapping", f"no mapping named {name!r}; known mappings: {known}",
                               field="mapping")
        return found


class AuditWriter:
    """Buffers audit rows and commits them as small Parquet parts (see the module's docstring)."""

    def __init__(self, output_dir: str | Path, key: bytes, *, rows: int, seconds: float) -> None:
        self.store = PartStore(output_dir, "audit", schema=AUDIT_SCHEMA)
        self.key = key
        self.rows = max(1, rows)
        self.seconds = seconds
        self.instance = secrets.token_hex(4)
        self.parts_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._sequence = 0
        self._writes: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick())

    def add(self, *, row_key: str, action_id: str, status: str, inputs: dict[str, Any] | None,
            invocation: Invocation | None) -> None:
        self._buffer.append({
            "row_key": row_key, "action_id": action_id, "status": status,
            "input_hmac": input_hmac(self.key, inputs) if inputs is not None else None,
            "http_status": invocation.http_status if invocation else None,
            "attempts": invocation.attempts if invocation else 0,
            "duration_ms": invocation.duration_ms if invocation else None,
            "correlation_id": invocation.correlation_id if invocation else None,
            "recorded_at": datetime.now(UTC)})
        if len(self._buffer) >= self.rows:
            self.flush()

    def flush(self) -> None:
        """Hand what is buffered to a writer thread (one part per UTC day it covers)."""
        rows, self._buffer = self._buffer, []
        by_day: dict[date, list[dict[str, Any]]] = {}
        for row in rows:
            by_day.setdefault(row["recorded_at"].date(), []).append(row)
        for day, day_rows in by_day.items():
            self._sequence += 1
            name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{self.instance}-{self._sequence:06d}"
            task = asyncio.ensure_future(self._write(f"serve-{day.isoformat()}", name, day_rows))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, run_id: str, name: str, rows: list[dict[str, Any]]) -> None:
        table = build_audit_table(**{column: [row[column] for row in rows] for column in AUDIT_SCHEMA.names})
        try:
            await asyncio.to_thread(self.store.write, run_id, name, table)
            self.parts_written += 1
        except Exception:  # an audit write must not take the service down; say so loudly
            log.exception("could not write audit part %s of %s (%d rows)", name, run_id, len(rows))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            if self._buffer:
                self.flush()

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self.flush()
        if self._writes:
            await asyncio.gather(*self._writes)


class EnrichService:
    """The endpoint's logic, independent of the HTTP framework: `start`, `enrich`, `health`, `stop`."""

    def __init__(self, config: ServiceConfig, settings: Settings | None = None,
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.settings = settings or settings_with_credentials(output_dir=config.output_dir)
        self.metrics = metrics or metrics_from_settings(self.settings.pipeline)
        self.mappings = Mappings(config.mapping_path, config.mappings_dir)
        self.output_dir = Path(config.output_dir or self.settings.pipeline.output_dir)
        self.client: GenesysClient | None = None
        self.invoker: Invoker | None = None
        self.audit = AuditWriter(self.output_dir, self.settings.pipeline.audit_key.get_secret_value().encode(),
                                 rows=config.audit_rows, seconds=config.audit_seconds)
        self._actions: dict[str, asyncio.Future[_Action]] = {}
        self._cooling_until = 0.0

    async def start(self) -> None:
        """Open the client on the running event loop (the server's)."""
        pipeline = self.settings.pipeline
        self.client = GenesysClient.from_settings(self.settings, metrics=self.metrics)
        policy = dataclasses.replace(RetryPolicy.from_settings(pipeline), max_retry_after_seconds=min(
            pipeline.max_retry_after_seconds, self.config.max_wait_seconds))
        self.invoker = Invoker(self.client, policy, self._new_breaker(), self.metrics)
        self.audit.start()
        for action_id in self.config.actions:  # fetched in the background; a failed fetch is retried on use
            self._actions[action_id] = asyncio.ensure_future(self._fetch_action(action_id))

    async def stop(self) -> None:
        for fetch in self._actions.values():
            if not fetch.done():
                fetch.cancel()
            elif not fetch.cancelled():
                fetch.exception()  # retrieved: a failed fetch is not reported as never awaited
        await self.audit.aclose()
        if self.client is not None:
            await self.client.aclose()

    def _new_breaker(self) -> CircuitBreaker:
        pipeline = self.settings.pipeline
        return CircuitBreaker(pipeline.breaker_window, pipeline.breaker_failure_ratio)

    # -- POST /enrich -----------------------------------------------------------------------------------------

    async def enrich(self, payload: Any, request_id: str) -> dict[str, Any]:
        """The 200 answer for one request, or `ServiceError`."""
        assert self.invoker is not None, "start() the service first"
        action_id, inputs, mapping = self._parse(payload)
        self._check_breaker()
        with bounded_wait(self.config.max_wait_seconds):
            action = await self._action(action_id)
            try:
                body = action.contract.validate(inputs, request_id)
            except RowRejected as exc:
                self._record(request_id, action_id, "rejected", inputs, None)
                raise ServiceError(400, "invalid_input", _rejection(exc), field=exc.field_name) from None
            invocation = await self._invoke(action_id, body, request_id)
        if invocation.status == "failed":
            self._record(request_id, action_id, "failed", body, invocation)
            raise _failure(invocation, self._wait_seconds())
        normalized = normalize_batch(mapping, [invocation.body])
        if normalized.errors[0]:
            self._record(request_id, action_id, "failed", body, invocation)
            raise ServiceError(502, "unexpected_answer", f"the action's answer does not fit the mapping: "
                                                         f"{normalized.errors[0]}",
                               correlation_id=invocation.correlation_id)
        self._record(request_id, action_id, "succeeded", body, invocation)
        answer: dict[str, Any] = {"status": "succeeded", "row": _jsonable(normalized.table.to_pylist()[0])}
        if not action.secure:
            answer["raw"] = invocation.body
        return answer | {"attempts": invocation.attempts, "correlation_id": invocation.correlation_id}

    def _parse(self, payload: Any) -> tuple[str, dict[str, Any], Mapping]:
        if not isinstance(payload, dict):
            raise ServiceError(400, "invalid_request", 'the body must be a JSON object: '
                                                       '{"action_id": "...", "input": {...}, "mapping": "..."}')
        unknown = sorted(set(payload) - _REQUEST_FIELDS)
        if unknown:
            raise ServiceError(400, "invalid_request", f"unknown field {unknown[0]!r}; the body holds action_id, "
                                                       f"input and (optionally) mapping", field=unknown[0])
        action_id = payload.get("action_id")
        if action_id is None and len(self.config.actions) == 1:
            action_id = self.config.actions[0]
        if not isinstance(action_id, str) or not action_id:
            raise ServiceError(400, "invalid_request", "'action_id' must be a string: the id of one of the served "
                                                       f"actions ({', '.join(self.config.actions)})", field="action_id")
        if action_id not in self.config.actions:
            raise ServiceError(404, "unknown_action", f"action {action_id!r} is not served here; served: "
                                                      f"{', '.join(self.config.actions)}", field="action_id")
        inputs = payload.get("input")
        if not isinstance(inputs, dict):
            raise ServiceError(400, "invalid_request", "'input' must be a JSON object of the action's input fields",
                               field="input")
        return action_id, inputs, self.mappings.get(payload.get("mapping"))

    def _check_breaker(self) -> None:
        assert self.invoker is not None
        if not self._cooling_until:
            return
        remaining = self._cooling_until - time.monotonic()
        if remaining > 0:
            raise ServiceError(503, "circuit_open", "calls to Genesys are paused: most recent calls failed as if the "
                                                    "remote were down", retry_after=remaining)
        self._cooling_until = 0.0
        self.invoker.breaker = self._new_breaker()

    async def _action(self, action_id: str) -> _Action:
        """The action's contract and `secure` flag, fetched once (concurrent first requests share the fetch)."""
        found = self._actions.get(action_id)
        if found is None or (found.done() and (found.cancelled() or found.exception() is not None)):
            found = self._actions[action_id] = asyncio.ensure_future(self._fetch_action(action_id))
        try:
            return await asyncio.wait_for(asyncio.shield(found), self.config.timeout_seconds)
        except TimeoutError:
            raise ServiceError(504, "timeout", f"the contract of {action_id!r} could not be read within "
                                               f"{self.config.timeout_seconds:g} s") from None
        except RateBudgetSpent as exc:
            raise _rate_limited(exc.retry_after) from None
        except NotFoundError as exc:
            raise ServiceError(404, "unknown_action", f"Genesys has no published action {action_id!r}",
                               field="action_id", correlation_id=exc.correlation_id) from None
        except DataActionsError as exc:
            raise ServiceError(502, "remote_failure", f"could not read the contract of {action_id!r}: {exc}") from None

    async def _fetch_action(self, action_id: str) -> _Action:
        assert self.client is not None
        action = await self.client.get_action(action_id, expand_contract=True)
        return _Action(InputContract.from_action(action), bool(action.get("secure")))

    async def _invoke(self, action_id: str, body: dict[str, Any], request_id: str) -> Invocation:
        assert self.invoker is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                return await self.invoker.execute(action_id, body)
        except RateBudgetSpent as exc:
            raise _rate_limited(exc.retry_after) from None
        except CircuitOpenError as exc:
            self._cooling_until = time.monotonic() + self.config.breaker_cooldown_seconds
            raise ServiceError(503, "circuit_open", str(exc),
                               retry_after=self.config.breaker_cooldown_seconds) from None
        except TimeoutError:
            waited = Invocation("failed", error_code="timeout", duration_ms=(time.perf_counter() - started) * 1e3)
            self._record(request_id, action_id, "failed", body, waited)
            raise ServiceError(504, "timeout", f"no outcome within {self.config.timeout_seconds:g} s") from None

    def _wait_seconds(self) -> float:
        assert self.client is not None
        return min(lane.limiter.wait_seconds() for lane in self.client.lanes)

    def _record(self, request_id: str, action_id: str, status: str, inputs: dict[str, Any] | None,
                invocation: Invocation | None) -> None:
        self.audit.add(row_key=request_id, action_id=action_id, status=status, inputs=inputs, invocation=invocation)
        self.metrics.record_rows(action_id, status)

    # -- GET /healthz ------------------------------------------------------------------------------------------

    async def health(self) -> tuple[int, dict[str, Any]]:
        assert self.client is not None
        body: dict[str, Any] = {"actions": list(self.config.actions)}
        if self._cooling_until > time.monotonic():
            error = ServiceError(503, "circuit_open", "calls to Genesys are paused after failures")
            return 503, {"status": "unavailable"} | body | error.body()
        try:
            await asyncio.wait_for(self.client.check_login(), min(10.0, self.config.timeout_seconds))
        except HealthCheckFailed as exc:
            return 503, {"status": "unavailable"} | body | ServiceError(503, "login_failed", str(exc)).body()
        except TimeoutError:
            return 503, {"status": "unavailable"} | body | ServiceError(503, "login_failed",
                                                                        "the login service did not answer").body()
        return 200, {"status": "ok"} | body


def _rejection(exc: RowRejected) -> str:
    where = f"input field '{exc.field_name}'" if exc.field_name else "the input"
    return f"{where} {exc.expected}"


def _rate_limited(retry_after: float) -> ServiceError:
    return ServiceError(429, "rate_limited", f"the rate budget toward Genesys is spent; retry in "
                                             f"{max(1, math.ceil(retry_after))} s", retry_after=retry_after)


def _failure(invocation: Invocation, wait_seconds: float) -> ServiceError:
    status, code = invocation.http_status, invocation.error_code or "error"
    message, correlation_id = invocation.error_message or code, invocation.correlation_id
    if status == 429:
        return ServiceError(429, "rate_limited", message, correlation_id=correlation_id,
                            retry_after=max(1.0, wait_seconds))
    if status == 504 or code == "timeout":
        return ServiceError(504, "upstream_timeout", message, correlation_id=correlation_id)
    if status == 404:
        return ServiceError(404, "unknown_action", message, field="action_id", correlation_id=correlation_id)
    if status in (400, 413, 422):
        return ServiceError(400, "rejected_by_action", message, correlation_id=correlation_id)
    return ServiceError(502, "remote_failure", message, correlation_id=correlation_id)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v for k, v in row.items()}


# -- HTTP -------------------------------------------------------------------------------------------------------


def create_app(service: EnrichService) -> Starlette:
    """The ASGI app around `service`: it opens the client at startup and flushes the audit at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    async def enrich(request: Request) -> Response:
        request_id = _request_id(request.headers.get("x-request-id"))
        headers = {"X-Request-Id": request_id}
        try:
            payload = await _json_body(request, service.config.max_body_bytes)
            return JSONResponse(await service.enrich(payload, request_id), headers=headers)
        except ServiceError as exc:
            return JSONResponse(exc.body(), exc.status, headers=headers | exc.headers())

    async def healthz(request: Request) -> Response:
        status, body = await service.health()
        return JSONResponse(body, status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "no such endpoint: use POST /enrich or GET /healthz",
                   405: f"{request.method} is not allowed here"}.get(exc.status_code, str(exc.detail))
        return JSONResponse({"error": {"code": code, "message": message}}, exc.status_code, headers=exc.headers)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": {"code": "internal", "message": "unexpected error; see the service log"}}, 500)

    app = Starlette(routes=[Route("/enrich", enrich, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
                    exception_handlers={HTTPException: http_error, Exception: crash}, lifespan=lifespan)
    app.add_middleware(_Timing, metrics=service.metrics)
    return app


class _Timing:
    """Records `http.server.request.duration` per request (routes by name, never by raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"]
            route = path if path in ("/enrich", "/healthz") else "other"
            self.metrics.record_http_server(scope["method"], route, status[0], time.perf_counter() - started)


def _request_id(given: str | None) -> str:
    return given if given and _NAME.match(given) else secrets.token_hex(12)


async def _json_body(request: Request, limit: int) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, "payload_too_large", f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, lifespan="on", access_log=False, log_config=None, log_level="warning",
                                         server_header=False, timeout_graceful_shutdown=5))


def serve(service: EnrichService, host: str = "127.0.0.1", port: int = 8080,
          announce: Callable[[str], None] = lambda url: print(f"listening on {url}", flush=True)) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM: in-flight requests finish, the audit buffer is written)."""
    sock = _bind(host, port)
    server = _server(create_app(service))
    announce(_url(sock))
    server.run(sockets=[sock])


class ServiceServer:
    """The service on a background thread of this process, on a free port by default (tests)."""

    def __init__(self, service: EnrichService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service, self.host, self.port = service, host, port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        sock = _bind(self.host, self.port)
        self._server = server = _server(create_app(self.service))
        self._thread = thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="service",
                                                 daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not server.started:
            self.stop()
            sock.close()
            raise RuntimeError("the service did not start (see the log)")
        self.base_url = _url(sock)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
