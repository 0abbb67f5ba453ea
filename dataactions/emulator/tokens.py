"""Issued bearer tokens: opaque random strings, each with its own expiry and rate window."""

from __future__ import annotations

import math
import secrets
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Token", "TokenStore"]

_ISSUED_KEPT = 10_000


@dataclass(slots=True, eq=False)
class Token:
    value: str
    client_id: str
    expires_at: float
    window: deque[float] = field(default_factory=deque)
    throttled_at: float = -math.inf
    retry_at: float = -math.inf

    def clear_limits(self) -> None:
        self.window.clear()
        self.throttled_at = -math.inf
        self.retry_at = -math.inf


class TokenStore:
    """Tokens by value. Expired tokens are dropped when next presented; revoked ones at once.

    `issued` remembers the last 10,000 tokens issued (revoked and expired ones too), for tests that check that
    no token was persisted anywhere (`GET /__emulator__/tokens`).
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self.issued: deque[tuple[str, str]] = deque(maxlen=_ISSUED_KEPT)

    def issue(self, client_id: str, lifetime: float, now: float) -> Token:
        token = Token(secrets.token_urlsafe(32), client_id, now + lifetime)
        self._tokens[token.value] = token
        self.issued.append((client_id, token.value))
        return token

    def lookup(self, value: str, now: float) -> Token | None:
        token = self._tokens.get(value)
        if token is not None and token.expires_at <= now:
            del self._tokens[value]
            return None
        return token

    def revoke(self, value: str) -> None:
        self._tokens.pop(value, None)

    def revoke_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def clear_limits(self) -> None:
        for token in self._tokens.values():
            token.clear_limits()
