"""Counters of what the emulator served; read through `GET /__emulator__/stats`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["Stats"]


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

    def count_execution(self, action_id: str, digest: str) -> int:
        """Count an execute that reached the action; return this input's attempt number (1-based)."""
        self.executions[action_id] += 1
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
        }
