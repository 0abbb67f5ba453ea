"""The Genesys Cloud API client. One call is one attempt; retrying is `invoke`'s job.

    async with GenesysClient.from_settings(load_settings()) as client:
        action = await client.check_health(action_id)                 # once per run
        answer = await client.execute(action_id, {"phoneNumber": "+353..."})

Every request holds one of `concurrency` slots, takes the lane that can send soonest, waits for that lane's rate
limiter, then goes out with the lane's bearer token. A 401 renews the token once and replays the request once.
A 429 pauses the lane's limiter for Retry-After (capped) and raises `RateLimitedError`. Errors map onto
`dataactions.errors`:

| what happened                                    | raised                                             |
|--------------------------------------------------|----------------------------------------------------|
| an error status                                  | `api_error_from_response(...)` (an `ApiError`)     |
| a 2xx whose body is not a JSON object            | `MalformedResponseError`                           |
| no connection (refused, connect/pool timeout)    | `TransportError(may_have_reached_server=False)`    |
| no answer in time (read/write timeout)           | `ResponseTimeout`                                  |
| connection dropped mid-request                   | `TransportError(may_have_reached_server=True)`     |

A lane is one OAuth client: a `TokenProvider` and the `RateLimiter` Genesys's per-token limit calls for.
`from_settings` builds one lane per configured client (`GENESYS_CLIENT_ID` plus `GENESYS_EXTRA_CLIENTS`), so n clients
send up to n × `rate_per_minute`. Each request goes to the lane whose limiter frees soonest, ties taken in turn: lanes
share the load evenly while all are free, and a lane paused by a 429 (or running behind) gets no requests that
another lane can send sooner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx

from dataactions.auth import TokenCache, TokenProvider
from dataactions.errors import (
    ApiError,
    AuthenticationError,
    DataActionsError,
    HealthCheckFailed,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    TransportError,
    api_error_from_response,
)
from dataactions.limits import ConcurrencyLimit, RateLimiter
from dataactions.retry import DEFAULT_RETRY_AFTER_SECONDS
from dataactions.settings import Settings
from dataactions.telemetry import Metrics
from dataactions.transport import CookielessAsyncClient, build_timeout, build_transport, map_transport_error

__all__ = ["ApiResponse", "GenesysClient", "Lane", "url_template"]

_ACTIONS_PATH = "/api/v2/integrations/actions"
_EXECUTIONS_PATH = "/api/v2/flows/executions"
_CORRELATION_HEADER = b"inin-correlation-id"
_DEFAULT_HEADERS = {"User-Agent": "dataactions/0.1", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A successful answer: its status, its JSON object body, Genesys's correlation id and the time it took.

    `text` is the body as it came, when it is UTF-8 JSON text (else None): keeping it costs nothing, while writing
    the decoded body out again as JSON for `raw_answer` cost ~3.7 µs a row, a sixth of landing a batch."""

    status: int
    body: dict[str, Any]
    correlation_id: str | None
    elapsed_seconds: float
    text: bytes | None = None


@dataclass(frozen=True, slots=True)
class Lane:
    """One OAuth client: its token, and the request rate Genesys allows a token."""

    tokens: TokenProvider
    limiter: RateLimiter


class GenesysClient:
    """Async client for data actions and workflow executions."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_base_url: str,
        lanes: Sequence[Lane],
        *,
        concurrency: int = 16,
        max_retry_after_seconds: float = 120.0,
        metrics: Metrics | None = None,
    ) -> None:
        if not lanes:
            raise ValueError("a GenesysClient needs at least one lane (OAuth client)")
        self.api_base_url = api_base_url.rstrip("/")
        self.lanes = tuple(lanes)
        self._http = http
        self._turn = 0
        self._slots = ConcurrencyLimit(concurrency)
        self._max_retry_after = max_retry_after_seconds
        self._urls: dict[tuple[str, str, bool], httpx.URL] = {}
        self._headers: dict[tuple[str, bool], dict[str, str]] = {}
        self._metrics = metrics or Metrics.noop()
        base = httpx.URL(self.api_base_url)
        self._server = (base.host, base.port or (443 if base.scheme == "https" else 80))

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
        token_cache: TokenCache | None = None, metrics: Metrics | None = None,
    ) -> GenesysClient:
        """A client for the org in `settings`: one lane per OAuth client, over `transport` (default:
        `build_transport`, one spare connection per client beyond the concurrency for token requests).

        `token_cache` lets tokens outlive this client (a process that opens a client per task reuses them);
        `metrics` records each attempt as `http.client.request.duration`."""
        genesys, pipeline = settings.genesys, settings.pipeline
        genesys.require_credentials()
        clients = genesys.clients
        http = CookielessAsyncClient(
            transport=transport or build_transport(pipeline.concurrency + len(clients)),
            timeout=build_timeout(pipeline),
            headers=_DEFAULT_HEADERS,
        )
        lanes = [
            Lane(
                TokenProvider(
                    http,
                    str(genesys.login_base_url),
                    client.client_id,
                    client.client_secret,
                    renew_margin_seconds=pipeline.token_renew_margin_seconds,
                    cache=token_cache,
                ),
                RateLimiter(pipeline.rate_per_minute),
            )
            for client in clients
        ]
        return cls(
            http,
            str(genesys.api_base_url),
            lanes,
            concurrency=pipeline.concurrency,
            max_retry_after_seconds=pipeline.max_retry_after_seconds,
            metrics=metrics,
        )

    async def __aenter__(self) -> GenesysClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def execute(
        self, action_id: str, inputs: Mapping[str, Any], *, flatten: bool = False, body: bytes | None = None
    ) -> Coroutine[Any, Any, ApiResponse]:
        """Run a published action once: `POST .../actions/{id}/execute`. `body` is `inputs` already encoded as
        JSON, sent as it is (the pipeline sends the canonical form its audit HMAC is computed over).

        Returns the request's coroutine itself rather than awaiting it in one of its own, the one call made for
        every row: see `_call`."""
        content = _encode(inputs) if body is None else body
        return self._call("POST", self._action_url(action_id, "execute", flatten), content)

    async def test_action(self, action_id: str, inputs: Mapping[str, Any]) -> ApiResponse:
        """Run it in test mode, which reports each step: `POST .../actions/{id}/test`."""
        return await self._call("POST", self._action_url(action_id, "test", False), _encode(inputs))

    async def get_action(
        self, action_id: str, *, expand_contract: bool = True, include_config: bool = False
    ) -> dict[str, Any]:
        params = {"expand": "contract"} if expand_contract else {}
        if include_config:
            params["includeConfig"] = "true"
        return (await self._call("GET", self._action_url(action_id, "", False), params=params)).body

    async def list_actions(
        self, *, name: str | None = None, category: str | None = None, secure: bool | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every published action matching the filters, all pages followed."""
        params = {"pageSize": str(page_size), "name": name, "category": category}
        if secure is not None:
            params["secure"] = "true" if secure else "false"
        params = {k: v for k, v in params.items() if v is not None}
        actions: list[dict[str, Any]] = []
        page = 1
        while True:
            body = (await self._call("GET", self._url(_ACTIONS_PATH), params={**params, "pageNumber": page})).body
            entities = [e for e in body.get("entities") or () if isinstance(e, dict)]
            actions.extend(entities)
            if not entities or page >= _as_int(body.get("pageCount"), page):
                return actions
            page += 1

    async def launch_workflow(
        self, flow_id: str, input_data: Mapping[str, Any], name: str | None = None
    ) -> ApiResponse:
        """Start a workflow execution: `POST /api/v2/flows/executions` → `{id, ...}`."""
        request: dict[str, Any] = {"flowId": flow_id, "inputData": dict(input_data)}
        if name is not None:
            request["name"] = name
        return await self._call("POST", self._url(_EXECUTIONS_PATH), _encode(request))

    async def get_workflow_execution(self, execution_id: str) -> ApiResponse:
        """`GET /api/v2/flows/executions/{id}` → `{status, outputData?, flowErrorInfo?, ...}`."""
        return await self._call("GET", self._url(f"{_EXECUTIONS_PATH}/{quote(execution_id, safe='')}"))

    async def check_health(self, action_id: str) -> dict[str, Any]:
        """Log in and read the action with its contract, once; `HealthCheckFailed` says what failed.

        A 429 fails the check at once rather than waiting for Retry-After.
        """
        await self.check_login()
        try:
            return await self.get_action(action_id, expand_contract=True)
        except DataActionsError as exc:
            raise _health_failure(f"reading action {action_id!r} at {self.api_base_url}", exc) from exc

    async def check_login(self) -> None:
        """Get a token for every lane (OAuth client); `HealthCheckFailed` says which login failed and why."""
        for lane in self.lanes:
            try:
                await lane.tokens.token()
            except DataActionsError as exc:
                raise _health_failure(f"logging in at {lane.tokens.token_url}", exc) from exc

    async def _call(
        self, method: str, url: httpx.URL, content: bytes | None = None, params: dict[str, Any] | None = None
    ) -> ApiResponse:
        """One request: a concurrency slot, the lane that can send soonest, its limiter, its token; a 401 renews
        the token and replays the request once.

        One coroutine from the slot to httpx: every coroutine between a row and its HTTP call is passed through
        again each time the call resumes, and each cost a row 1–2 µs of the client's time (interleaved runs)."""
        async with self._slots:
            lane = self._pick_lane()
            if not lane.limiter.try_acquire():
                await lane.limiter.acquire()
            token = lane.tokens.current() or await lane.tokens.token()
            for replay in (False, True):
                started = perf_counter()
                try:
                    response = await self._http.request(method, url, content=content, params=params,
                                                        headers=self._headers_for(token, content is not None))
                except (httpx.RequestError, aiohttp.ClientError) as exc:
                    raise self._transport_failure(exc, method, url, started) from exc
                elapsed = perf_counter() - started
                self._record_attempt(method, url, response.status_code, elapsed)
                if response.status_code != 401 or replay:
                    break
                token = await lane.tokens.renew(token)
                await lane.limiter.acquire()
        return self._answer(lane, response, elapsed)

    def _pick_lane(self) -> Lane:
        """The lane whose limiter lets a request leave soonest; ties go round in turn.

        Called right before the request reserves the lane's slot, with no await between, so each pick sees the
        reservations of the picks before it.
        """
        lanes = self.lanes
        if len(lanes) == 1:
            return lanes[0]
        count = len(lanes)
        self._turn = start = (self._turn + 1) % count
        best, best_wait = lanes[start], lanes[start].limiter.wait_seconds()
        for step in range(1, count):
            if best_wait <= 0.0:
                break
            lane = lanes[(start + step) % count]
            wait = lane.limiter.wait_seconds()
            if wait < best_wait:
                best, best_wait = lane, wait
        return best

    def _record_attempt(self, method: str, url: httpx.URL, status: int | None, seconds: float,
                        error_type: str | None = None) -> None:
        if self._metrics.enabled:
            self._metrics.record_http_client(method, url_template(url.path), *self._server, status, seconds,
                                             error_type)

    def _transport_failure(self, exc: Exception, method: str, url: httpx.URL, started: float) -> TransportError:
        error = map_transport_error(exc, f"{method} {url.path}")
        self._record_attempt(method, url, None, perf_counter() - started, error.code)
        return error

    def _answer(self, lane: Lane, response: httpx.Response, elapsed: float) -> ApiResponse:
        status = response.status_code
        if 200 <= status < 300:
            content = response.content
            return ApiResponse(status, _json_object(response), _correlation_id(response), elapsed,
                               content if _is_utf8_object(content) else None)
        error = api_error_from_response(status, _json_or_none(response), dict(response.headers))
        if isinstance(error, RateLimitedError):
            retry_after = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS
            lane.limiter.pause(min(retry_after, self._max_retry_after))
        raise error

    def _headers_for(self, token: str, with_body: bool) -> dict[str, str]:
        headers = self._headers.get((token, with_body))
        if headers is None:
            if len(self._headers) >= 8 * len(self.lanes):
                self._headers.clear()
            headers = {"Authorization": f"Bearer {token}"}
            if with_body:
                headers["Content-Type"] = "application/json"
            self._headers[(token, with_body)] = headers
        return headers

    def _action_url(self, action_id: str, verb: str, flatten: bool) -> httpx.URL:
        key = (action_id, verb, flatten)
        url = self._urls.get(key)
        if url is None:
            path = f"{_ACTIONS_PATH}/{quote(action_id, safe='')}" + (f"/{verb}" if verb else "")
            url = self._urls[key] = self._url(path + ("?flatten=true" if flatten else ""))
        return url

    def _url(self, path: str) -> httpx.URL:
        return httpx.URL(self.api_base_url + path)


_ID_SEGMENTS = re.compile(r"^(/api/v2/integrations/actions|/api/v2/flows/executions)/[^/]+")
_ID_NAMES = {"/api/v2/integrations/actions": "{actionId}", "/api/v2/flows/executions": "{executionId}"}


def url_template(path: str) -> str:
    """The path with its ids replaced (`/api/v2/integrations/actions/{actionId}/execute`), for metric attributes."""
    return _ID_SEGMENTS.sub(lambda m: f"{m.group(1)}/{_ID_NAMES[m.group(1)]}", path, count=1)


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    request = response.request
    try:
        body = json.loads(response.content)
    except ValueError:
        raise MalformedResponseError(
            f"HTTP {response.status_code} answer to {request.method} {request.url.path} is not valid JSON"
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"HTTP {response.status_code} answer to {request.method} {request.url.path} is a JSON "
            f"{type(body).__name__}, not an object"
        )
    return body


def _correlation_id(response: httpx.Response) -> str | None:
    """Genesys's correlation id of an answer, read from the raw header list: `Headers.get` first works out the
    text encoding of every header, which made it cost about 2 µs an answer instead of 1."""
    for name, value in response.headers.raw:
        if name.lower() == _CORRELATION_HEADER:
            return value.decode("latin-1")
    return None


def _is_utf8_object(content: bytes) -> bool:
    """Whether JSON object text that `json.loads` accepted is UTF-8: it starts with `{` not followed by a NUL
    (UTF-16 and UTF-32 put NULs beside the ASCII characters, a UTF-8 BOM comes before the `{`)."""
    return content[:1] == b"{" and content[1:2] != b"\x00"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _as_int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


_HEALTH_HINTS: tuple[tuple[type[DataActionsError], int | None, str], ...] = (
    (TransportError, None, "unreachable host"),
    (RateLimitedError, None, "rate limited (429); the check does not wait for Retry-After, try again later"),
    (AuthenticationError, 403, "missing permission: the OAuth client's role needs integrations:action:view "
                               "(and integrations:action:execute to run actions)"),
    (AuthenticationError, None, "refused credentials"),
    (NotFoundError, None, "unknown action: no published action has this id in this org"),
    (DataActionsError, None, "unexpected answer"),
)


def _health_failure(step: str, exc: DataActionsError) -> HealthCheckFailed:
    status = exc.status if isinstance(exc, ApiError) else None
    hint = next(h for cls, code, h in _HEALTH_HINTS if isinstance(exc, cls) and code in (None, status))
    return HealthCheckFailed(f"health check failed {step}: {hint}: {exc}")
