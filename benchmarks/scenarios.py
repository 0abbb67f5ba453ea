"""The scenarios of `make bench`; each returns a JSON-ready dict of its figures.

A `Bench` holds what they share: one emulator process (re-configured per scenario), a work directory for the
generated inputs and outputs, the event loop kind, and the Prefect ephemeral API (started by the warm-up flow).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import baselines
from benchmarks.emulator_capacity import drive
from benchmarks.harness import (
    ACTION_ID,
    MAPPING,
    ROOT,
    CpuClock,
    StatsPoller,
    fetch_token,
    load_payloads,
    median,
    progress,
    run_async,
    write_rows,
)
from dataactions.emulator import EmulatorProcess

__all__ = ["Bench"]


@dataclass
class Bench:
    emulator: EmulatorProcess
    workdir: Path
    loop: str = "asyncio"
    concurrency: int = 64
    reps: int = 3
    _runs: int = 0
    prefect_server_pid: int | None = None
    setup: dict[str, Any] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------------------------------------------

    def rows_file(self, rows: int) -> Path:
        return write_rows(self.workdir / f"rows-{rows}.csv", rows)

    def configure(self, **scenario: Any) -> None:
        self.emulator.reset()
        self.emulator.configure(**({"rate_limit": None, "concurrent_executions_max": None, "latency": 0, "faults": []}
                                   | scenario))

    def new_run_id(self, name: str) -> str:
        self._runs += 1
        return f"bench-{name}-{self._runs}"

    def quiesce(self, idle_cores: float = 0.1, timeout: float = 90.0) -> float:
        """Wait until the Prefect server has caught up (its CPU below `idle_cores` for two 0.3 s samples in a
        row), so one measurement does not pay for the events the previous one left behind — after the naive
        flow's thousands of task runs, the server stays busy for tens of seconds (prefect-notes.md §3)."""
        if not self.prefect_server_pid:
            return 0.0
        clock, started, calm = CpuClock(self.prefect_server_pid), time.perf_counter(), 0
        while calm < 2 and time.perf_counter() - started < timeout:
            before = clock.seconds()
            time.sleep(0.3)
            after = clock.seconds()
            calm = calm + 1 if before is None or after is None or (after - before) / 0.3 < idle_cores else 0
        waited = time.perf_counter() - started
        self.setup["quiesce_seconds"] = round(self.setup.get("quiesce_seconds", 0.0) + waited, 1)
        return waited

    def flow(self, input_path: Path, run_id: str, **options: Any) -> dict[str, Any]:
        """`bulk_enrich` once, timed around the flow call (as the CLI runs it), with the CPU each process used."""
        from flows.enrich import bulk_enrich

        parameters = {"action_id": ACTION_ID, "mapping_path": str(MAPPING), "output_dir": str(self.workdir / "out"),
                      "rate_per_minute": 0, "concurrency": self.concurrency, "key_column": "customer_ref"} | options

        async def timed() -> tuple[dict[str, Any], float]:
            started = time.perf_counter()
            report = await bulk_enrich(input_path=str(input_path), run_id=run_id, **parameters)
            return report, time.perf_counter() - started

        cpu: dict[str, Any] = {}
        self.quiesce()
        before = self.emulator.stats(include_inputs=False)
        with self._cpu(cpu):
            report, seconds = run_async(timed(), self.loop)
        after = self.emulator.stats(include_inputs=False)
        return {"rows": report["rows"], "succeeded": report["succeeded"], "failed": report["failed"],
                "seconds": round(seconds, 3), "rows_per_second": round(report["rows"] / seconds, 1),
                "requests": after["requests"] - before["requests"],
                "executions": sum(after["executions"].values()) - sum(before["executions"].values()),
                "rate_limited": after["rate_limited"] - before["rate_limited"],
                **self._shares(cpu, seconds, report["rows"])}

    def baseline(self, kind: str, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        token = fetch_token(self.emulator.base_url)
        loop = baselines.httpx_stack_loop if kind == "httpx_stack" else baselines.aiohttp_loop
        cpu: dict[str, Any] = {}
        self.quiesce()
        with self._cpu(cpu):
            result = run_async(loop(self.emulator.base_url, ACTION_ID, token, payloads, self.concurrency), self.loop)
        return _rounded(result) | self._shares(cpu, result["seconds"], result["rows"])

    def _cpu(self, into: dict[str, Any]) -> Any:
        return _Measures(into, {"client": CpuClock(os.getpid()), "emulator": CpuClock(self.emulator.process.pid),
                                **({"prefect_server": CpuClock(self.prefect_server_pid)}
                                   if self.prefect_server_pid else {})})

    @staticmethod
    def _shares(cpu: dict[str, Any], seconds: float, rows: int) -> dict[str, Any]:
        """CPU each process used, as a share of one core over the run (1.0 = one core busy throughout), and the
        client's CPU per row (microseconds): the figure least disturbed by other load on the machine."""
        shares = {f"cpu_{name}": None if used is None else round(used / seconds, 2) for name, used in cpu.items()}
        client = cpu.get("client")
        return shares | {"client_cpu_us_per_row": None if client is None else round(client / rows * 1e6)}

    # -- scenarios -----------------------------------------------------------------------------------------------

    def warm_up(self) -> dict[str, Any]:
        """The first flow of the process starts Prefect's ephemeral API server: timed here, not in the figures."""
        self.configure()
        small = write_rows(self.workdir / "warm-up.csv", 200, start=900_000)
        started = time.perf_counter()
        first = self.flow(small, self.new_run_id("warm-up"))
        first_seconds = time.perf_counter() - started
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        if server.server_process is not None:
            self.prefect_server_pid = server.server_process.pid
            self.setup["prefect_api_url"] = server.api_url
        second = self.flow(small, self.new_run_id("warm-up"))
        from dataactions.settings import load_settings
        from flows.enrich import bulk_enrich

        self.setup.update(batch_size=load_settings().pipeline.batch_size,
                          batches_in_flight=inspect.signature(bulk_enrich.fn).parameters["batches_in_flight"].default)
        return {"first_flow_seconds": round(first_seconds, 2), "first_flow_rows": first["rows"],
                "flow_200_rows_seconds": second["seconds"]}

    def throughput(self, rows: int) -> dict[str, Any]:
        """The pipeline, (a) and (b) on the same rows, interleaved, `reps` times; medians."""
        self.configure()
        path = self.rows_file(rows)
        payloads = load_payloads(path)
        runs: dict[str, list[dict[str, Any]]] = {"pipeline": [], "httpx_stack": [], "aiohttp": []}
        last_run_id = ""
        for rep in range(1, self.reps + 1):
            last_run_id = self.new_run_id("throughput")
            runs["pipeline"].append(self.flow(path, last_run_id))
            runs["httpx_stack"].append(self.baseline("httpx_stack", payloads))
            runs["aiohttp"].append(self.baseline("aiohttp", payloads))
            progress(f"throughput rep {rep}/{self.reps}: " + ", ".join(
                f"{name} {values[-1]['rows_per_second']:.0f} rows/s" for name, values in runs.items() if values))
        return {"rows": rows, "concurrency": self.concurrency, "reps": self.reps, "runs": runs,
                "last_run_id": last_run_id, "input": str(path), **_summaries(runs)}

    def naive(self, rows: int) -> dict[str, Any]:
        """(c): one Prefect task per row. Run last: it leaves the Prefect server busy ingesting thousands of task
        runs for a while, and every rep waits for it to catch up (`quiesce`)."""
        self.configure()
        path = write_rows(self.workdir / f"naive-{rows}.csv", rows, start=500_000)
        runs = []
        for rep in range(1, self.reps + 1):
            cpu: dict[str, Any] = {}
            self.quiesce()
            with self._cpu(cpu):
                result = run_async(baselines.naive_prefect_flow(
                    self.emulator.base_url, ACTION_ID, path, rows, self.concurrency,
                    self.workdir / f"naive-{rep}.parquet"), self.loop)
            runs.append(_rounded(result) | self._shares(cpu, result["seconds"], rows))
            progress(f"naive Prefect flow rep {rep}/{self.reps}: {result['rows_per_second']:.0f} rows/s")
        return {"rows": rows, "runs": runs}

    def resume(self, input_path: Path, run_id: str) -> dict[str, Any]:
        """Rerun a finished run with the same run id: nothing should be sent again."""
        self.configure()
        result = self.flow(input_path, run_id)
        return {"rows": result["rows"], "seconds": result["seconds"], "rows_per_second": result["rows_per_second"],
                "executions_sent": result["executions"], "api_requests": result["requests"]}

    def latency(self, rows: int, latency_ms: float) -> dict[str, Any]:
        self.configure(latency=latency_ms)
        path = self.rows_file(rows)
        ideal = self.concurrency / (latency_ms / 1000)
        pipeline = []
        for _ in range(max(1, self.reps - 1)):
            self.emulator.reset()  # counters only: the span of this run's executes
            run = self.flow(path, self.new_run_id("latency"))
            run["sending_rows_per_second"] = _sending_rate(self.emulator.stats(include_inputs=False))
            pipeline.append(run)
        stack = self.baseline("httpx_stack", load_payloads(path))
        best = median([r["rows_per_second"] for r in pipeline])
        sending = median([r["sending_rows_per_second"] for r in pipeline if r["sending_rows_per_second"]])
        return {"rows": rows, "latency_ms": latency_ms, "concurrency": self.concurrency,
                "ideal_rows_per_second": ideal, "rows_per_second": round(best, 1),
                "share_of_ideal": round(best / ideal, 3),
                "sending_rows_per_second": round(sending, 1), "sending_share_of_ideal": round(sending / ideal, 3),
                "httpx_stack_rows_per_second": stack["rows_per_second"],
                "httpx_stack_share_of_ideal": round(stack["rows_per_second"] / ideal, 3),
                "runs": pipeline}

    def rate_limit(self, rows: int, requests: int, per_seconds: float, rate_per_minute: float) -> dict[str, Any]:
        """The emulator limits each token to `requests` per `per_seconds`; the client is set a little under it."""
        self.configure(rate_limit={"requests": requests, "per_seconds": per_seconds})
        path = self.rows_file(rows)
        limit_per_second = requests / per_seconds
        with StatsPoller(self.emulator, interval=0.1) as poller:
            result = self.flow(path, self.new_run_id("rate"), rate_per_minute=rate_per_minute)
        final = self.emulator.stats(include_inputs=False)
        first = poller.first_at_or_after(0.0, lambda s: s["requests"] > 0)
        after_first_second = poller.first_at_or_after(first[0] + 1.0) if first else None
        late_429 = final["rate_limited"] - after_first_second[1]["rate_limited"] if after_first_second else None
        steady = _steady_rate(poller.samples)
        return {"rows": rows, "limit": {"requests": requests, "per_seconds": per_seconds},
                "client_rate_per_minute": rate_per_minute,
                "headroom": round(1 - rate_per_minute / 60 / limit_per_second, 4),
                "seconds": result["seconds"], "rows_per_second": result["rows_per_second"],
                "share_of_limit": round(result["rows_per_second"] / limit_per_second, 3),
                "steady_requests_per_second": steady,
                "steady_share_of_limit": None if steady is None else round(steady / limit_per_second, 3),
                "responses_429": final["rate_limited"], "responses_429_after_first_second": late_429,
                "peak_in_window": final.get("peak_in_window"), "succeeded": result["succeeded"],
                "failed": result["failed"]}

    def memory(self, sizes: list[int]) -> dict[str, Any]:
        """Each size in a fresh process (running the flow as the CLI does); the ratio of largest to smallest."""
        self.configure()
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        if self.setup.get("prefect_api_url"):
            env["PREFECT_API_URL"] = self.setup["prefect_api_url"]
        runs = {}
        for rows in sizes:
            self.quiesce()
            path = write_rows(self.workdir / f"memory-{rows}.csv", rows, start=1_000_000)
            command = [sys.executable, "-m", "benchmarks.memory_child", "--input", str(path),
                       "--output", str(self.workdir / "out-memory"), "--run-id", self.new_run_id("memory"),
                       "--concurrency", str(self.concurrency), "--loop", self.loop]
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"memory run over {rows} rows failed:\n{done.stderr[-4000:]}")
            runs[str(rows)] = json.loads(done.stdout.strip().splitlines()[-1])
            progress(f"memory {rows:,} rows: peak RSS {runs[str(rows)]['peak_rss_mib']:.0f} MiB "
                     f"({runs[str(rows)]['seconds']:.0f} s)")
        small, large = runs[str(min(sizes))], runs[str(max(sizes))]
        return {"runs": runs, "ratio": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3)}

    def emulator_capacity(self, seconds: float) -> dict[str, Any]:
        self.configure()
        token = fetch_token(self.emulator.base_url)
        cpu: dict[str, Any] = {}
        with self._cpu(cpu):
            result = run_async(drive(self.emulator.base_url, token, seconds, self.concurrency, 0.5), self.loop)
        rate = round(result["requests"] / result["elapsed_s"], 1)
        return {"concurrency": self.concurrency, "requests_per_second": rate, **result,
                **self._shares(cpu, result["elapsed_s"] + 0.5, result["requests"])}


class _Measures:
    """Several `CpuClock.measure` blocks as one context manager."""

    def __init__(self, into: dict[str, Any], clocks: dict[str, CpuClock]) -> None:
        self.into, self.clocks, self.before = into, clocks, {}  # type: ignore[var-annotated]

    def __enter__(self) -> None:
        self.before = {name: clock.seconds() for name, clock in self.clocks.items()}

    def __exit__(self, *exc: object) -> None:
        for name, clock in self.clocks.items():
            before, after = self.before[name], clock.seconds()
            self.into[name] = None if before is None or after is None else after - before


def _summaries(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per contender: rows/s, CPU shares, client CPU per row."""
    return {
        "rows_per_second": {name: round(median([r["rows_per_second"] for r in values]), 1)
                            for name, values in runs.items()},
        "cpu_median": {name: {key: median([r[key] for r in values if r.get(key) is not None])
                              for key in values[0] if key.startswith("cpu_")} for name, values in runs.items()},
        "client_cpu_us_per_row": {name: median([r["client_cpu_us_per_row"] for r in values
                                                if r.get("client_cpu_us_per_row") is not None])
                                  for name, values in runs.items()},
    }


def with_naive(throughput: dict[str, Any], naive: dict[str, Any]) -> dict[str, Any]:
    """The throughput figures with (c) added, and the ratios of the pipeline to each contender."""
    runs = throughput["runs"] | {"naive_prefect": naive["runs"]}
    merged = throughput | {"runs": runs, "naive_rows": naive["rows"], **_summaries(runs)}
    rps = merged["rows_per_second"]
    merged["ratios"] = {f"pipeline_vs_{name}": round(rps["pipeline"] / rps[name], 3 if name != "naive_prefect" else 1)
                        for name in ("httpx_stack", "aiohttp", "naive_prefect") if rps.get(name)}
    return merged


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in result.items()}


def _sending_rate(stats: dict[str, Any]) -> float | None:
    """Executes/s the emulator served from its first to its last execute of a run (its own clock): the rate
    while rows were being sent, without the flow's fixed start and finish."""
    executions = sum(stats["executions"].values())
    span = stats.get("execution_span") or []
    if executions < 2 or len(span) < 2 or span[1] <= span[0]:
        return None
    return round((executions - 1) / (span[1] - span[0]), 1)


def _steady_rate(samples: list[tuple[float, dict[str, Any]]]) -> float | None:
    """Requests/s the emulator admitted between the 2nd second of traffic and the last second before it stopped."""
    admitted = [(at, s["requests"] - s["rate_limited"]) for at, s in samples]
    moving = [(at, n) for at, n in admitted if n > 0]
    if len(moving) < 2:
        return None
    start, end = moving[0][0] + 1.0, next(at for at, n in admitted if n == admitted[-1][1]) - 1.0
    window = [(at, n) for at, n in admitted if start <= at <= end]
    if len(window) < 2 or window[-1][0] - window[0][0] < 5:
        return None
    return round((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]), 2)
