"""OAuth client credentials (genesys-api.md §3): one bearer token per OAuth client, shared by every request.

    provider = TokenProvider(http, "https://login.mypurecloud.ie", client_id, SecretStr(secret))
    token = await provider.token()          # fetched once, then served from memory
    token = await provider.renew(token)     # after a 401: one renewal however many requests saw it

Renewal: a token of lifetime `expires_in` is renewed when less than `min(renew_margin_seconds, expires_in / 10)`
of it remains (a 24 h token with the default 300 s margin: 5 minutes before expiry; a 5-minute token: 30 s
before), so that the renewal never starts within the first 90 % of a token's life. If that early renewal fails
transiently, the still-valid token is kept and renewal is tried again a few seconds later; once the token has
expired, the failure is raised. Only one token request is ever in flight: concurrent callers share it.

A `TokenCache` keeps tokens beyond one provider's life: a process that opens a client per unit of work (a Dask
worker runs each task on a fresh event loop) logs in once, not once per task. Only providers given the cache use it.

Client credentials never appear in messages, reprs or logs; neither do tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
from pydantic import SecretStr

from dataactions.errors import (
    ApiError,
    AuthenticationError,
    DataActionsError,
    ErrorDetails,
    MalformedResponseError,
    ServiceUnavailableError,
    api_error_from_response,
)
from dataactions.transport import map_transport_error

__all__ = ["DEFAULT_TOKEN_LIFETIME_SECONDS", "PROCESS_TOKENS", "TokenCache", "TokenProvider"]

DEFAULT_TOKEN_LIFETIME_SECONDS = 86_400.0
_RENEWAL_RETRY_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class _CachedToken:
    token: str
    renew_at: float
    expires_at: float


class TokenCache:
    """Tokens by (token URL, client id), with their renewal and expiry times on `time.monotonic`.

    Shared by providers on different event loops (and threads) of one process: entries are replaced whole.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _CachedToken] = {}

    def __repr__(self) -> str:
        return f"TokenCache({len(self._entries)} tokens)"

    def get(self, key: tuple[str, str]) -> _CachedToken | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, str], entry: _CachedToken) -> None:
        self._entries[key] = entry

    def discard(self, key: tuple[str, str], token: str) -> None:
        """Forget `token` (it was refused), unless another one has replaced it already."""
        entry = self._entries.get(key)
        if entry is not None and entry.token == token:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()


PROCESS_TOKENS = TokenCache()
"""This process's cache, for clients opened per task (see `dataactions.runtime.runtime_scope`)."""


class TokenProvider:
    """The bearer token of one OAuth client-credentials client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        login_base_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        renew_margin_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        cache: TokenCache | None = None,
    ) -> None:
        if cache is not None and clock is not time.monotonic:
            raise ValueError("a shared TokenCache keeps time.monotonic times: it needs the default clock")
        self.client_id = client_id
        self.tokens_fetched = 0
        self._http = http
        self._url = f"{login_base_url.rstrip('/')}/oauth/token"
        self._secret = client_secret
        self._auth = httpx.BasicAuth(client_id, client_secret.get_secret_value())
        self._margin = renew_margin_seconds
        self._clock = clock
        self._token: str | None = None
        self._renew_at = -math.inf
        self._expires_at = -math.inf
        self._inflight: asyncio.Future[str] | None = None
        self._cache = cache
        self._cache_key = (self._url, client_id)

    def __repr__(self) -> str:
        return f"TokenProvider(url={self._url!r}, client_id={self.client_id!r})"

    @property
    def token_url(self) -> str:
        return self._url

    def current(self) -> str | None:
        """The token if it is not due for renewal, else None (then await `token`); spares a coroutine."""
        token = self._token
        return token if token is not None and self._clock() < self._renew_at else None

    async def token(self) -> str:
        """The current token, fetching or renewing it first when due."""
        fresh = self.current()
        if fresh is not None:
            return fresh
        current = self._token
        if self._adopt_cached():
            return self._token  # type: ignore[return-value]
        try:
            return await self._fetch_shared()
        except DataActionsError as exc:
            if not (exc.transient and current is not None and self._still_valid()):
                raise
            self._postpone_renewal()
            return current

    async def renew(self, stale_token: str) -> str:
        """A fresh token after `stale_token` was refused; a no-op if it was already replaced."""
        if self._token is not None and self._token != stale_token:
            return self._token
        if self._token == stale_token:
            self._renew_at = self._expires_at = -math.inf
        if self._cache is not None:
            self._cache.discard(self._cache_key, stale_token)
            if self._adopt_cached():
                return self._token  # type: ignore[return-value]
        return await self._fetch_shared()

    def _adopt_cached(self) -> bool:
        """Take a token another provider of this process fetched, if it is not due for renewal."""
        entry = self._cache.get(self._cache_key) if self._cache is not None else None
        if entry is None or entry.token == self._token or self._clock() >= entry.renew_at:
            return False
        self._token, self._renew_at, self._expires_at = entry.token, entry.renew_at, entry.expires_at
        return True

    def _still_valid(self) -> bool:
        return self._clock() < self._expires_at

    def _postpone_renewal(self) -> None:
        now = self._clock()
        self._renew_at = now + min(_RENEWAL_RETRY_SECONDS, (self._expires_at - now) / 2)

    async def _fetch_shared(self) -> str:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._inflight)

    async def _fetch(self) -> str:
        try:
            started = self._clock()
            token, lifetime = await self._request_token()
            self._token = token
            self._expires_at = started + lifetime
            self._renew_at = self._expires_at - min(self._margin, lifetime / 10)
            self.tokens_fetched += 1
            if self._cache is not None:
                self._cache.put(self._cache_key, _CachedToken(token, self._renew_at, self._expires_at))
            return token
        finally:
            self._inflight = None

    async def _request_token(self) -> tuple[str, float]:
        try:
            response = await self._http.post(
                self._url,
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
            )
        except (httpx.RequestError, aiohttp.ClientError) as exc:
            raise map_transport_error(exc, f"POST {self._url}") from None
        if response.status_code != 200:
            raise self._refusal(response)
        return _parse_token(response)

    def _refusal(self, response: httpx.Response) -> ApiError:
        error = api_error_from_response(response.status_code, _json_or_none(response), dict(response.headers))
        details = self._scrubbed(error.details)
        if response.status_code == 429:
            return error
        if response.status_code >= 500:
            return ServiceUnavailableError(_reworded(details, f"the login service at {self._url} failed"))
        return AuthenticationError(
            _reworded(
                details,
                f"the login service at {self._url} refused the client credentials of OAuth client "
                f"'{self.client_id}'; check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET",
            )
        )

    def _scrubbed(self, details: ErrorDetails) -> ErrorDetails:
        secret = self._secret.get_secret_value()
        if not secret:
            return details
        return dataclasses.replace(
            details,
            message=details.message.replace(secret, "**********"),
            nested_messages=tuple(m.replace(secret, "**********") for m in details.nested_messages),
            extra={},
        )


def _reworded(details: ErrorDetails, what: str) -> ErrorDetails:
    said = f" (it said: {details.message})" if details.message else ""
    return dataclasses.replace(details, message=f"{what}{said}")


def _parse_token(response: httpx.Response) -> tuple[str, float]:
    body = _json_or_none(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise MalformedResponseError(f"the token endpoint {response.request.url} answered without an access_token")
    lifetime = body.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
    return token, float(lifetime)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
