"""The wire under the httpx API: which transport, what timeouts, and how its failures map to ours.

httpx is the API everywhere; the transport underneath is an engineering choice (performance-notes.md):

| `kind`      | transport                            | why                                                  |
|-------------|--------------------------------------|------------------------------------------------------|
| `"aiohttp"` | `httpx_aiohttp.AiohttpTransport`     | default: holds up with many requests in flight       |
| `"httpx"`   | `httpx.AsyncHTTPTransport` (httpcore)| the reference implementation; slow past ~16 in flight |

Both verify TLS (there is deliberately no switch to turn that off; `SSL_CERT_FILE` adds a corporate CA).
Timeouts: `connect` bounds opening a connection, `read` bounds waiting for each part of the answer and must
exceed the longest action timeout Genesys enforces (60 s), `pool` bounds waiting for a free connection.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any, Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from dataactions.errors import ResponseTimeout, TransportError
from dataactions.settings import PipelineSettings

__all__ = [
    "KEEPALIVE_SECONDS",
    "CookielessAsyncClient",
    "TransportKind",
    "build_timeout",
    "build_transport",
    "map_transport_error",
]

TransportKind = Literal["aiohttp", "httpx"]

KEEPALIVE_SECONDS = 4.0
"""Idle connections are dropped before common server idle timeouts (uvicorn: 5 s), since a POST sent on a
connection the server has just closed cannot be safely replayed."""


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessAsyncClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies and leaves no reference cycle behind a read answer.

    The API authenticates every request by bearer token; reading each answer into a cookie jar cost about 15 %
    of the client-side time of a request (measured with cProfile at 16 in flight). And httpx binds each answer's
    stream to the answer (`response.stream._response is response`), so every answer, with its request, headers
    and the transport's objects (about 25 of them), was freed only by the cyclic garbage collector, whose
    collections then took a tenth of the client's time (`make bench`). Once the body is read, the stream is
    replaced by the body itself, and an answer is freed as soon as it is dropped.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        self._cookies = _NoCookies()

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:
            response.stream = httpx.ByteStream(response.content)
        return response


def build_timeout(pipeline: PipelineSettings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=pipeline.connect_timeout_seconds,
        read=pipeline.request_timeout_seconds,
        write=pipeline.request_timeout_seconds,
        pool=pipeline.request_timeout_seconds,
    )


def build_transport(max_connections: int, *, kind: TransportKind = "aiohttp") -> httpx.AsyncBaseTransport:
    """A pooled, keep-alive, TLS-verifying transport for `max_connections` requests in flight."""
    verify = verifying_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    if kind == "aiohttp":
        return AiohttpTransport(verify=verify, limits=limits)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    raise ValueError(f"unknown transport kind {kind!r}; use 'aiohttp' or 'httpx'")


@functools.lru_cache(maxsize=4)
def verifying_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The TLS context httpx builds for `verify=True` (which reads `SSL_CERT_FILE` and `SSL_CERT_DIR`), once per
    process for each value of those two, the cache key: loading the CA bundle took about 35 ms, a tenth of a small
    run's fixed cost."""
    return httpx.create_ssl_context(verify=True)


def map_transport_error(exc: BaseException, what: str) -> TransportError:
    """Our `TransportError` for an httpx or aiohttp failure without an HTTP answer.

    The aiohttp transport re-raises aiohttp errors as httpx ones, but coarsely (a server that drops the
    connection mid-answer becomes `ConnectTimeout`), so the aiohttp cause, when there is one, decides.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | TimeoutError):
        exc = cause
    detail = f"{what}: {type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, _NEVER_SENT):
        return TransportError(f"could not connect: {detail}", may_have_reached_server=False)
    if isinstance(exc, _TIMEOUTS):
        return ResponseTimeout(f"no answer in time: {detail}")
    return TransportError(f"connection failed mid-request: {detail}", may_have_reached_server=True)


_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
_TIMEOUTS = (httpx.TimeoutException, aiohttp.ServerTimeoutError, TimeoutError)
