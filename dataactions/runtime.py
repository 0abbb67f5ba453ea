"""The live parts of a run, opened once per process and event loop and shared by its batches.

One HTTP client (one token, one rate limiter, one concurrency limit) serves every batch that runs in this
process, so limits hold across concurrent batches. Work spread over several processes (Dask) runs each task on a
fresh event loop: `runtime_scope` opens a runtime for that task and closes it after (its tokens are kept for the
process's next tasks), and the flow splits the run's budget between the tasks it keeps in flight (`JobSpec.share`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataactions.auth import PROCESS_TOKENS, TokenCache
from dataactions.client import GenesysClient
from dataactions.contracts import InputContract
from dataactions.errors import ConfigurationError
from dataactions.invoke import Invoker
from dataactions.job import JobSpec, settings_with_credentials
from dataactions.mapping import Mapping
from dataactions.settings import Settings, load_settings
from dataactions.sink import PartStore
from dataactions.telemetry import Metrics, metrics_from_settings

__all__ = ["Runtime", "close_runtime", "load_mapping", "runtime_for", "runtime_scope"]

log = logging.getLogger("dataactions")


GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Make Python's cyclic garbage collector cheap for the rest of the process: a bulk run allocates a few
    short-lived containers per row (coroutines, tasks, HTTP objects), and by default every 700 of them trigger a
    collection, while rows that live for a batch keep promoting objects until full collections walk the whole
    heap — Prefect, pydantic and pyarrow bring about half a million objects. Freezing what exists now (imports,
    settings) takes it out of every later collection, and a larger young generation collects less often. Together
    they cut the client's CPU per row by about a fifth (`make bench`, benchmarks/README.md). Garbage cycles among
    the frozen objects are never collected, so this collects first; idempotent, cheap after the first call.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


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
    def open(cls, spec: JobSpec, *, token_cache: TokenCache | None = None, metrics: Metrics | None = None) -> Runtime:
        settle_heap()
        settings = settings_with_credentials(batch_size=spec.batch_size, concurrency=spec.concurrency,
                                             rate_per_minute=spec.rate_per_minute, output_dir=spec.output_dir)
        metrics = metrics if metrics is not None else metrics_from_settings(settings.pipeline)
        client = GenesysClient.from_settings(settings, token_cache=token_cache, metrics=metrics)
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


@asynccontextmanager
async def runtime_scope(spec: JobSpec) -> AsyncIterator[Runtime]:
    """The run's shared runtime on this event loop if the flow opened one (in-process batches); otherwise a
    runtime of this task's own, closed on exit (a Dask worker runs each task on a fresh loop).

    A task's own runtime takes its limits from `spec` (the flow hands each task its share), reuses the tokens
    and the metrics exporter this process already has, and fetches the action's contract once per task.
    """
    shared = _runtimes.get((spec.run_id, id(asyncio.get_running_loop())))
    if shared is not None:
        yield shared
        return
    own = Runtime.open(spec, token_cache=PROCESS_TOKENS, metrics=_process_metrics())
    try:
        yield own
    finally:
        await own.aclose()


def _process_metrics() -> Metrics:
    """The process's one metrics exporter (`configure_metrics` keeps it: a Prometheus port opens once).

    A worker process that cannot open its exporter (several Dask workers on one host cannot all bind the same
    Prometheus port) runs its batches without metrics rather than failing them, and says so once.
    """
    try:
        return metrics_from_settings(load_settings().pipeline)
    except ConfigurationError as exc:
        global _metrics_warned
        if not _metrics_warned:
            log.warning("this process exports no metrics: %s (use DATAACTIONS_METRICS_EXPORTER=otlp with workers "
                        "that share a host)", exc)
            _metrics_warned = True
        return Metrics.noop()


_metrics_warned = False
