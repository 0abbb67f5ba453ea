"""What every benchmark shares: the environment, the emulator, generated inputs, the event loop, clocks.

Everything runs on loopback against the emulator in its own process (`EmulatorProcess`), so the emulator has
its own interpreter and GIL; the benchmark process runs the client side (the flow, or a bare loop) and the
Prefect ephemeral API server runs as its child.
"""

from __future__ import annotations

import asyncio
import csv
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dataactions.emulator import EmulatorProcess, Scenario

__all__ = [
    "ACTION_ID",
    "AUDIT_KEY",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "MAPPING",
    "ROOT",
    "CpuClock",
    "StatsPoller",
    "bench_scenario",
    "fetch_token",
    "load_payloads",
    "median",
    "point_at",
    "prepare_environment",
    "progress",
    "run_async",
    "write_rows",
]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
ACTION_ID = "custom_-_customer-by-phone"
MAPPING = ROOT / "data" / "mappings" / "customer_by_phone.yaml"
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"
AUDIT_KEY = "benchmark-audit-key-not-a-secret-0123456789"
_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """One line on stderr, prefixed with the time since the benchmarks started."""
    print(f"[bench {time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def prepare_environment() -> None:
    """Settings `make bench` exports, for a bare `python -m benchmarks` too (explicit values win)."""
    defaults = {
        "PREFECT_HOME": str(ROOT / ".prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def point_at(base_url: str) -> None:
    """Point the pipeline's settings at the emulator (as `dataactions demo` does)."""
    os.environ.update({"GENESYS_API_BASE_URL": base_url, "GENESYS_CLIENT_ID": CLIENT_ID,
                       "GENESYS_CLIENT_SECRET": CLIENT_SECRET, "DATAACTIONS_AUDIT_KEY": AUDIT_KEY})
    for name in ("GENESYS_REGION", "GENESYS_LOGIN_BASE_URL", "GENESYS_EXTRA_CLIENTS"):
        os.environ.pop(name, None)


def bench_scenario(**overrides: Any) -> Scenario:
    """The default catalog with no latency, no rate limit, no concurrency limit and no faults, then `overrides`."""
    data = Scenario.default().model_dump(mode="json")
    data.update(rate_limit=None, concurrent_executions_max=None, latency=0, faults=[])
    data.update(overrides)
    return Scenario.model_validate(data)


def phone(n: int) -> str:
    return f"+1555{n:07d}"


def write_rows(path: Path, rows: int, *, start: int = 0) -> Path:
    """A CSV like the sample input: a key column, the action's input, and two columns the action does not take."""
    if path.exists():
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_ref", "phoneNumber", "segment", "region"])
        segments, regions = ("retail", "business", "public"), ("NA", "EU", "APAC")
        for n in range(start, start + rows):
            writer.writerow([f"CUST-{n:08d}", phone(n), segments[n % 3], regions[n % 5 % 3]])
    return path


def load_payloads(path: Path) -> list[dict[str, Any]]:
    """The request bodies the pipeline sends for `path`: only the property the action's contract declares."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [{"phoneNumber": row["phoneNumber"]} for row in csv.DictReader(handle)]


def fetch_token(base_url: str) -> str:
    response = httpx.post(f"{base_url}/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "client_credentials"}, trust_env=False)
    response.raise_for_status()
    return str(response.json()["access_token"])


def run_async(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    """Run `coroutine` on a fresh event loop of the kind named ("asyncio" or "uvloop")."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class CpuClock:
    """CPU seconds (user + system) a process has used, read from /proc (Linux); None elsewhere."""

    _TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._TICKS

    @contextmanager
    def measure(self, into: dict[str, Any], key: str) -> Iterator[None]:
        """Store the CPU seconds used inside the block as `into[key]` (None when unknown)."""
        before = self.seconds()
        yield
        after = self.seconds()
        into[key] = None if before is None or after is None else round(after - before, 3)


@dataclass
class StatsPoller:
    """Polls the emulator's stats on a thread every `interval` seconds: (seconds since start, stats) samples."""

    emulator: EmulatorProcess
    interval: float = 0.1
    samples: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def __enter__(self) -> StatsPoller:
        self._started = time.perf_counter()
        client = httpx.Client(base_url=self.emulator.base_url, timeout=10, trust_env=False)

        def poll() -> None:
            with client:
                while True:
                    at = time.perf_counter() - self._started
                    stats = client.get("/__emulator__/stats", params={"inputs": "false"}).json()
                    self.samples.append((at, stats))
                    if self._stop.wait(self.interval):
                        return

        self._thread = threading.Thread(target=poll, name="emulator-stats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def first_at_or_after(self, seconds: float, when: Callable[[dict[str, Any]], bool] = lambda _: True
                          ) -> tuple[float, dict[str, Any]] | None:
        return next(((at, s) for at, s in self.samples if at >= seconds and when(s)), None)
