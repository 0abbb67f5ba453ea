"""`make bench`: throughput, latency hiding, rate-limit precision, memory, resume and emulator capacity.

    python -m benchmarks                 # everything (~6-8 minutes on 2 cores); writes benchmarks/results/latest.*
    python -m benchmarks --quick         # small sizes, one repetition (~1-2 minutes): a smoke test of the harness
    python -m benchmarks --only throughput,resume --results /tmp/bench

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT, bench_scenario, point_at, prepare_environment, progress
from benchmarks.report import markdown

SCENARIOS = ("throughput", "resume", "latency", "rate_limit", "memory", "emulator")
FULL = {"rows": 20_000, "naive_rows": 1_000, "reps": 3, "latency_rows": 6_000, "rate_rows": 3_000,
        "memory_sizes": [20_000, 200_000], "capacity_seconds": 5.0}
QUICK = {"rows": 2_000, "naive_rows": 200, "reps": 1, "latency_rows": 1_000, "rate_rows": 300,
         "memory_sizes": [2_000, 6_000], "capacity_seconds": 2.0}
RATE_LIMIT = {"requests": 50, "per_seconds": 1.0}
RATE_HEADROOM = 290 / 300  # the client is set to the same share of the limit as the default 290/min is of 300/min


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (a smoke test)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--reps", type=int, help="repetitions of the throughput runs (default 3; --quick 1)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default=_cli_loop(),
                        help="event loop for every client-side run (default: the one the command line uses)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                        help="where latest.json and latest.md go")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (inputs, Parquet outputs)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    sizes = dict(QUICK if args.quick else FULL)
    if args.reps:
        sizes["reps"] = args.reps

    prepare_environment()
    from benchmarks.scenarios import Bench
    from dataactions.emulator import EmulatorProcess

    workdir = Path(tempfile.mkdtemp(prefix="dataactions-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": _meta(args, sizes)}
    progress(f"work directory {workdir}; loop {args.loop}; scenarios {', '.join(chosen)}")
    try:
        with EmulatorProcess(bench_scenario()) as emulator:
            point_at(emulator.base_url)
            bench = Bench(emulator, workdir, loop=args.loop, concurrency=args.concurrency, reps=sizes["reps"])
            progress("warm-up flow (starts the Prefect ephemeral API server)")
            results["setup"] = bench.warm_up() | bench.setup
            progress(f"warm-up done: first flow {results['setup']['first_flow_seconds']} s")
            results.update(_run(bench, chosen, sizes))
            results["setup"].update(bench.setup)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_end"] = _load_average()
    _write(args.results, results)
    progress(f"done in {results['meta']['total_seconds']} s: {args.results / 'latest.md'}")
    print(markdown(results))
    return 0


def _run(bench: Any, chosen: list[str], sizes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "throughput" in chosen or "resume" in chosen:
        progress(f"throughput: {sizes['rows']:,} rows x {sizes['reps']} (pipeline, httpx stack, aiohttp)")
        out["throughput"] = bench.throughput(sizes["rows"])
    if "resume" in chosen:
        progress("resume: rerun the last throughput run with its run id")
        out["resume"] = bench.resume(Path(out["throughput"]["input"]), out["throughput"]["last_run_id"])
    if "latency" in chosen:
        progress(f"latency hiding: {sizes['latency_rows']:,} rows at 100 ms")
        out["latency"] = bench.latency(sizes["latency_rows"], 100.0)
    if "rate_limit" in chosen:
        rate = RATE_LIMIT["requests"] / RATE_LIMIT["per_seconds"] * 60 * RATE_HEADROOM
        progress(f"rate limit: {sizes['rate_rows']:,} rows, limit {RATE_LIMIT['requests']}/s, client {rate:.0f}/min")
        out["rate_limit"] = bench.rate_limit(sizes["rate_rows"], RATE_LIMIT["requests"], RATE_LIMIT["per_seconds"],
                                             round(rate, 1))
    if "memory" in chosen:
        progress(f"memory: {', '.join(f'{n:,}' for n in sizes['memory_sizes'])} rows, each in a fresh process")
        out["memory"] = bench.memory(sizes["memory_sizes"])
    if "emulator" in chosen:
        progress("emulator capacity: aiohttp, fixed time")
        out["emulator"] = bench.emulator_capacity(sizes["capacity_seconds"])
    if "throughput" in out:
        from benchmarks.scenarios import with_naive

        progress(f"naive Prefect flow, one task per row: {sizes['naive_rows']:,} rows x {sizes['reps']}")
        out["throughput"] = with_naive(out["throughput"], bench.naive(sizes["naive_rows"]))
    bench.quiesce()  # let the Prefect server finish its backlog before it is stopped (fewer shutdown tracebacks)
    return out


def _cli_loop() -> str:
    """The event loop `dataactions enrich` runs the flow on."""
    try:
        from dataactions.console import EVENT_LOOP  # type: ignore[attr-defined]
    except ImportError:
        return "asyncio"
    return str(EVENT_LOOP)


def _meta(args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    import prefect

    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
            "sizes": sizes, "concurrency": args.concurrency, "loop": args.loop, "python": platform.python_version(),
            "prefect": prefect.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average_start": _load_average()}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _write(directory: Path, results: dict[str, Any]) -> None:
    """Write latest.json and latest.md via temporary files, so an interrupted run leaves the last good pair."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("latest.json", json.dumps(results, indent=2, default=str) + "\n"),
                       ("latest.md", markdown(results))):
        temporary = directory / f"{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, directory / name)


if __name__ == "__main__":
    sys.exit(main())
