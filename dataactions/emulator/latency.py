"""Latency sampling for the emulated remote call (applied with asyncio.sleep, never blocking)."""

from __future__ import annotations

import math
import random

from dataactions.emulator.scenario import Latency

__all__ = ["LatencySampler"]


class LatencySampler:
    """Draws a latency in seconds from a scenario `Latency`."""

    def __init__(self, latency: Latency, rng: random.Random) -> None:
        self.latency = latency
        self._rng = rng
        self._mu, self._sigma = _lognormal_parameters(latency)

    def seconds(self) -> float:
        spec = self.latency
        if spec.distribution == "fixed":
            return spec.ms / 1000
        if spec.distribution == "uniform":
            return self._rng.uniform(spec.min_ms, spec.max_ms) / 1000  # type: ignore[arg-type]
        if spec.distribution == "normal":
            return max(0.0, self._rng.gauss(spec.mean_ms, spec.stddev_ms)) / 1000  # type: ignore[arg-type]
        return self._rng.lognormvariate(self._mu, self._sigma) / 1000


def _lognormal_parameters(latency: Latency) -> tuple[float, float]:
    """mu, sigma of the underlying normal so the latency itself has the given mean and stddev."""
    if latency.distribution != "lognormal":
        return 0.0, 0.0
    mean, stddev = latency.mean_ms or 0.0, latency.stddev_ms or 0.0
    sigma_squared = math.log(1 + (stddev / mean) ** 2)
    return math.log(mean) - sigma_squared / 2, math.sqrt(sigma_squared)
