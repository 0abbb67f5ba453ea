"""Where the pipeline's CPU per row goes: the same calls through successively more of it, without Prefect.

    .venv/bin/python -m benchmarks.layers [--rows 20000] [--reps 3]

| layer     | what runs for each row                                                                      |
|-----------|---------------------------------------------------------------------------------------------|
| `stack`   | (a) of `make bench`: the bare loop over the pipeline's HTTP stack                           |
| `client`  | the same loop calling `GenesysClient.execute` (slots, lanes, rate limiter, token, errors)   |
| `invoker` | ... calling `Invoker.execute` (retry policy, circuit breaker, metrics, the row's outcome)   |
| `batches` | `enrich_batch` over the file's batches, 4 in flight: reading, validation, landing, commits  |

The gap between `batches` and the pipeline's figure in `make bench` is Prefect's (flow, task runs, artifacts).
Figures are medians of `--reps` runs; single runs vary by ±15% on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks import baselines
from benchmarks.harness import (
    ACTION_ID,
    MAPPING,
    bench_scenario,
    fetch_token,
    load_payloads,
    point_at,
    prepare_environment,
    write_rows,
)

LAYERS = ("stack", "client", "invoker", "batches")


async def _loop(payloads: list[dict[str, Any]], call: Callable[[dict[str, Any]], Awaitable[Any]],
                concurrency: int) -> None:
    rows = iter(payloads)

    async def worker() -> None:
        for payload in rows:
            await call(payload)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _through_runtime(layer: str, input_path: Path, output_dir: Path, payloads: list[dict[str, Any]],
                           concurrency: int) -> None:
    from dataactions.batching import run_windowed
    from dataactions.pipeline import enrich_batch
    from dataactions.runs import batches_for, plan_run
    from dataactions.runtime import Runtime

    spec = plan_run(input_path=str(input_path), action_id=ACTION_ID, mapping_path=str(MAPPING),
                    output_dir=str(output_dir), rate_per_minute=0, concurrency=concurrency,
                    key_column="customer_ref")
    runtime = Runtime.open(spec)
    try:
        runtime.adopt_action(await runtime.client.check_health(ACTION_ID))
        if layer == "client":
            await _loop(payloads, lambda p: runtime.client.execute(ACTION_ID, p), concurrency)
        elif layer == "invoker":
            await _loop(payloads, lambda p: runtime.invoker.execute(ACTION_ID, p), concurrency)
        else:
            await run_windowed(batches_for(spec), lambda batch: enrich_batch(runtime, batch), 4)
    finally:
        await runtime.aclose()


def _measure(run: Coroutine[Any, Any, Any], rows: int) -> tuple[float, float]:
    """(client CPU µs per row, rows/s) of one run on a fresh event loop."""
    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run)
    return (time.process_time() - cpu) / rows * 1e6, rows / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Print, and return, each layer's median (client CPU µs per row, rows/s)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    prepare_environment()
    from dataactions.emulator import EmulatorProcess
    from dataactions.runtime import settle_heap

    figures: dict[str, list[tuple[float, float]]] = {layer: [] for layer in LAYERS}
    with EmulatorProcess(bench_scenario()) as emulator, tempfile.TemporaryDirectory(prefix="layers-") as tmp:
        work = Path(tmp)
        point_at(emulator.base_url)
        input_path = write_rows(work / "rows.csv", args.rows)
        payloads = load_payloads(input_path)
        settle_heap()  # as a run's runtime does, so the bare loop is not charged more garbage collection
        for rep in range(args.reps):
            token = fetch_token(emulator.base_url)
            figures["stack"].append(_measure(baselines.httpx_stack_loop(
                emulator.base_url, ACTION_ID, token, payloads, args.concurrency), args.rows))
            for layer in LAYERS[1:]:
                out = work / f"out-{layer}-{rep}"
                figures[layer].append(_measure(_through_runtime(
                    layer, input_path, out, payloads, args.concurrency), args.rows))
    medians = {layer: (statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs))
               for layer, runs in figures.items()}
    for layer, (cpu, rate) in medians.items():
        print(f"{layer:8s} {cpu:5.0f} µs CPU per row  {rate:7.0f} rows/s")
    return medians


if __name__ == "__main__":
    main()
