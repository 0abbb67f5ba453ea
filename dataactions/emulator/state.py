"""EmulatorState: everything one emulator instance knows, derived from its (re-configurable) scenario."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from dataactions.emulator.catalog import CatalogAction, build_catalog
from dataactions.emulator.faults import FaultInjector
from dataactions.emulator.latency import LatencySampler
from dataactions.emulator.limits import ConcurrencyGate, RateLimiter
from dataactions.emulator.scenario import Scenario, WorkflowSpec
from dataactions.emulator.stats import Stats
from dataactions.emulator.tokens import Token, TokenStore
from dataactions.emulator.workflows import WorkflowStore

__all__ = ["EmulatorState"]


class EmulatorState:
    """Scenario-derived behaviour plus the runtime stores (tokens, workflows, counters)."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.tokens = TokenStore()
        self.workflows = WorkflowStore()
        self.stats = Stats()
        self.gate = ConcurrencyGate(scenario.concurrent_executions_max)
        self.tokens_issued = 0
        self._apply(scenario, rebuild_faults=True)

    def _apply(self, scenario: Scenario, rebuild_faults: bool) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.credentials = {cred.client_id: cred.client_secret for cred in scenario.credentials}
        self.catalog: dict[str, CatalogAction] = build_catalog(scenario.actions, self.rng)
        self.flows: dict[str, WorkflowSpec] = {flow.flow_id: flow for flow in scenario.workflows}
        self.limiter = RateLimiter(scenario.rate_limit)
        self.gate.maximum = scenario.concurrent_executions_max
        self.latency = LatencySampler(scenario.latency, self.rng)
        if rebuild_faults:
            self.faults = FaultInjector(scenario.faults, scenario.seed)

    def configure(self, patch: dict[str, Any]) -> Scenario:
        """Replace top-level scenario fields (validated); fault counters restart only if faults or seed change."""
        scenario = Scenario.model_validate({**self.scenario.model_dump(mode="json"), **patch})
        self._apply(scenario, rebuild_faults="faults" in patch or "seed" in patch)
        return scenario

    def reset(self) -> None:
        """Zero the counters and clear rate windows, Retry-After waits and fault counters."""
        self.stats = Stats()
        self.tokens_issued = 0
        self.tokens.clear_limits()
        self.gate.reset_peak()
        self.faults = FaultInjector(self.scenario.faults, self.scenario.seed)

    def issue_token(self, client_id: str) -> Token:
        self.tokens_issued += 1
        self.stats.count_token(client_id)
        return self.tokens.issue(client_id, self.scenario.token_lifetime_seconds, self.clock())

    @property
    def rate_window_seconds(self) -> float:
        """The window the stats' `peak_in_window` counts over: the rate limit's, else 1 s."""
        limit = self.scenario.rate_limit
        return limit.per_seconds if limit is not None else 1.0

    def latency_for(self, action: CatalogAction) -> LatencySampler:
        return action.latency or self.latency

    def snapshot(self, include_inputs: bool = True) -> dict[str, Any]:
        return {
            **self.stats.snapshot(include_inputs),
            "tokens_issued": self.tokens_issued,
            "rate_window_seconds": self.rate_window_seconds,
            "in_flight": self.gate.in_flight,
            "max_in_flight": self.gate.peak,
            "faults_fired": self.faults.fired_counts(),
        }
