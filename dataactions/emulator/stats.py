"""Counters of what the emulator served; read through `GET /__emulator__/stats`."""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from typing import Any

__all__ = ["ALL_CLIENTS", "Stats"]

ALL_CLIENTS = "*"


class Stats:
    """Plain counters mutated only on the server's event loop."""

    def __init__(self) -> None:
        self.executions: Counter[str] = Counter()
        self.by_input: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.tests: Counter[str] = Counter()
        self._test_attempts: Counter[tuple[str, str]] = Counter()
        self.responses: Counter[int] = Counter()
        self.token_responses: Counter[int] = Counter()
        self.requests = 0
        self.rate_limited = 0
        self.concurrency_limited = 0
        self.requests_before_retry_after = 0
        self.dropped_connections = 0
        self.workflow_launches = 0
        self.workflow_polls = 0
        self.admitted_by_client: Counter[str] = Counter()
        self.tokens_by_client: Counter[str] = Counter()
        self.peak_in_window: Counter[str] = Counter()
        self._windows: defaultdict[str, deque[float]] = defaultdict(deque)
        self.execution_span: list[float] = []  # monotonic seconds of the first and the last execute

    def count_admitted(self, client_id: str, now: float, window_seconds: float) -> None:
        """An API request passed the rate limit: count it for its OAuth client, and track the most requests
        admitted within any `window_seconds` per client and over all clients (`ALL_CLIENTS`), whatever tokens
        carried them: the rate a whole run achieved, or the budget it kept, as the server saw it."""
        self.admitted_by_client[client_id] += 1
        for key in (client_id, ALL_CLIENTS):
            window = self._windows[key]
            window.append(now)
            while window[0] <= now - window_seconds:
                window.popleft()
            if len(window) > self.peak_in_window[key]:
                self.peak_in_window[key] = len(window)

    def count_token(self, client_id: str) -> None:
        self.tokens_by_client[client_id] += 1

    def count_execution(self, action_id: str, digest: str) -> int:
        """Count an execute that reached the action; return this input's attempt number (1-based)."""
        self.executions[action_id] += 1
        now = time.monotonic()
        if self.execution_span:
            self.execution_span[1] = now
        else:
            self.execution_span = [now, now]
        per_input = self.by_input[action_id]
        per_input[digest] += 1
        return per_input[digest]

    def count_test(self, action_id: str, digest: str) -> int:
        self.tests[action_id] += 1
        self._test_attempts[action_id, digest] += 1
        return self._test_attempts[action_id, digest]

    def count_response(self, status: int) -> None:
        self.requests += 1
        self.responses[status] += 1
        if status == 429:
            self.rate_limited += 1

    def count_token_response(self, status: int) -> None:
        self.token_responses[status] += 1

    def snapshot(self, include_inputs: bool = True) -> dict[str, Any]:
        return {
            "executions": dict(self.executions),
            "execution_span": list(self.execution_span),
            "by_input": {action: dict(counts) for action, counts in self.by_input.items()} if include_inputs else {},
            "tests": dict(self.tests),
            "responses": {str(status): count for status, count in sorted(self.responses.items())},
            "token_responses": {str(status): count for status, count in sorted(self.token_responses.items())},
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "concurrency_limited": self.concurrency_limited,
            "requests_before_retry_after": self.requests_before_retry_after,
            "dropped_connections": self.dropped_connections,
            "workflow_launches": self.workflow_launches,
            "workflow_polls": self.workflow_polls,
            "by_client": {
                client: {"requests": self.admitted_by_client[client], "tokens": self.tokens_by_client[client],
                         "peak_in_window": self.peak_in_window[client]}
                for client in sorted(set(self.admitted_by_client) | set(self.tokens_by_client))
            },
            "peak_in_window": self.peak_in_window[ALL_CLIENTS],
        }
