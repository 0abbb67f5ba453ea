"""The live parts of a run, opened once per process and event loop and shared by its batches.

One HTTP client (one token, one rate limiter, one concurrency limit) serves every batch that runs in this
process, so limits hold across concurrent batches. Work spread over several processes (Dask) opens one
runtime per process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataactions.client import GenesysClient
from dataactions.contracts import InputContract
from dataactions.invoke import Invoker
from dataactions.job import JobSpec, settings_with_credentials
from dataactions.mapping import Mapping
from dataactions.settings import Settings
from dataactions.sink import PartStore
from dataactions.telemetry import Metrics, configure_metrics

__all__ = ["Runtime", "close_runtime", "load_mapping", "runtime_for"]

log = logging.getLogger("dataactions")


def load_mapping(spec: JobSpec) -> Mapping:
    return Mapping.load(Path(spec.mapping_path)) if spec.mapping_path else Mapping.identity()


@dataclass
class Runtime:
    spec: JobSpec
    settings: Settings
    client: GenesysClient
    invoker: Invoker
    mapping: Mapping
    results: PartStore
    audit: PartStore
    metrics: Metrics
    contract: InputContract = field(default_factory=InputContract.passthrough)
    secure: bool = False

    @classmethod
    def open(cls, spec: JobSpec) -> Runtime:
        settings = settings_with_credentials(batch_size=spec.batch_size, concurrency=spec.concurrency,
                                             rate_per_minute=spec.rate_per_minute, output_dir=spec.output_dir)
        metrics = configure_metrics(settings.pipeline.metrics_exporter)
        client = GenesysClient.from_settings(settings)
        invoker = Invoker.from_settings(client, settings.pipeline, metrics)
        out = Path(spec.output_dir)
        return cls(spec, settings, client, invoker, load_mapping(spec),
                   PartStore(out, "results"), PartStore(out, "audit"), metrics)

    @property
    def audit_key(self) -> bytes:
        return self.settings.pipeline.audit_key.get_secret_value().encode()

    def adopt_action(self, action: dict[str, Any]) -> None:
        """Take the catalog entity fetched by the health check: its input contract and `secure` flag."""
        self.contract = InputContract.from_action(action)
        self.secure = bool(action.get("secure"))

    async def check_health(self) -> dict[str, Any]:
        """Once, before any row: credentials work and the action exists (its contract is kept).

        Raises HealthCheckFailed saying what failed; nothing has been sent when it does.
        """
        if self.spec.mode == "workflow":
            await self.client.check_login()
            return {"id": self.spec.target, "mode": "workflow"}
        action = await self.client.check_health(self.spec.target)
        self.adopt_action(action)
        return {"id": action.get("id"), "name": action.get("name"), "secure": self.secure,
                "ignored_columns": list(self.contract.extra_columns)}

    async def ensure_action(self) -> None:
        """On a process that did not run the health check, fetch the action's contract once."""
        if self.spec.mode == "execute" and self.contract.is_passthrough:
            self.adopt_action(await self.client.get_action(self.spec.target, expand_contract=True))

    async def aclose(self) -> None:
        await self.client.aclose()


_runtimes: dict[tuple[str, int], Runtime] = {}


def runtime_for(spec: JobSpec) -> Runtime:
    """The runtime of this run on the running event loop, opened on first use."""
    key = (spec.run_id, id(asyncio.get_running_loop()))
    if key not in _runtimes:
        _runtimes[key] = Runtime.open(spec)
    return _runtimes[key]


async def close_runtime(spec: JobSpec) -> None:
    runtime = _runtimes.pop((spec.run_id, id(asyncio.get_running_loop())), None)
    if runtime is not None:
        await runtime.aclose()
