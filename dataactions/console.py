"""What the command line shows: a progress bar while a run goes, a summary table after, the catalog."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dataactions.client import GenesysClient
from dataactions.job import new_run_id
from dataactions.pipeline import BatchSummary
from dataactions.progress import listen
from dataactions.readers import count_rows
from dataactions.runs import plan_run
from dataactions.settings import load_settings

__all__ = ["print_action", "print_actions", "run_demo", "run_enrich"]

console = Console(stderr=True)
DEMO_SCENARIO = Path("data/emulator/demo.yaml")
DEMO_INPUT = Path("data/sample/customers.csv")
DEMO_MAPPING = Path("data/mappings/customer_by_phone.yaml")
DEMO_ACTION = "custom_-_customer-by-phone"


_WHERE_IT_RUNS = {"runner", "dask_address", "batches_in_flight"}  # flow parameters that do not shape the job


def run_enrich(parameters: dict[str, Any], *, as_json: bool = False) -> int:
    """Plan (failing fast on bad settings), run the flow with a progress bar, print the summary."""
    spec = plan_run(**{k: v for k, v in parameters.items() if k not in _WHERE_IT_RUNS})
    parameters = parameters | {"run_id": spec.run_id}
    if parameters.get("batches_in_flight") is None:
        parameters.pop("batches_in_flight", None)  # the flow's default
    from flows.enrich import bulk_enrich

    with _progress_bar(spec.input_path) as on_batch:
        unlisten = listen(on_batch)
        try:
            report = asyncio.run(bulk_enrich(**parameters))
        finally:
            unlisten()
    _print_report(report, as_json)
    return 0


@contextmanager
def _progress_bar(input_path: str) -> Iterator[Any]:
    columns = [TextColumn("[bold]enrich"), BarColumn(), MofNCompleteColumn(),
               TextColumn("ok {task.fields[ok]} · failed {task.fields[failed]} · rejected {task.fields[rejected]}"
                          " · {task.fields[rate]:.0f} rows/s"), TimeElapsedColumn()]
    started = time.perf_counter()
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task("rows", total=count_rows(input_path), ok=0, failed=0, rejected=0, rate=0.0)
        totals = {"ok": 0, "failed": 0, "rejected": 0, "done": 0}

        def on_batch(run_id: str, summary: BatchSummary) -> None:
            totals["ok"] += summary.succeeded
            totals["failed"] += summary.failed
            totals["rejected"] += summary.rejected
            totals["done"] += summary.rows
            rate = totals["done"] / max(time.perf_counter() - started, 1e-9)
            progress.update(bar, completed=totals["done"], rate=rate,
                            **{k: totals[k] for k in ("ok", "failed", "rejected")})

        yield on_batch


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(title=f"run {report['run_id']}", show_header=True)
    for column in ("rows", "succeeded", "failed", "rejected", "attempts", "seconds", "rows/s"):
        table.add_column(column, justify="right")
    table.add_row(*(str(report[k]) for k in ("rows", "succeeded", "failed", "rejected", "attempts")),
                  f"{report['seconds']:.1f}", f"{report['rows_per_second']:.0f}")
    out = Console()  # styles only on a terminal, none when NO_COLOR is set (rich reads both)
    out.print(table)
    latency = report.get("latency_ms") or {}
    if latency:
        out.print(f"latency p50 / p95 / p99: {latency['p50']:,.0f} / {latency['p95']:,.0f} / {latency['p99']:,.0f} ms"
                  f" · retries {report.get('retries', 0)} · 429 answers {report.get('rate_limited', 0)}")
    if report["error_codes"]:
        out.print("errors by code: " + ", ".join(f"{k} {v}" for k, v in report["error_codes"].items()))
    out.print(f"results: {report['results_path']}\naudit:   {report['audit_path']}")


def run_demo(output_dir: str, *, as_json: bool = False) -> int:
    """The whole job on the bundled emulator (its own process) and the sample input."""
    from dataactions.emulator import EmulatorProcess, Scenario, load_scenario

    scenario = load_scenario(DEMO_SCENARIO) if DEMO_SCENARIO.exists() else Scenario.default()
    with EmulatorProcess(scenario) as emulator:
        _point_at_emulator(emulator.base_url, scenario)
        run_id = new_run_id("demo")
        status = run_enrich({"input_path": str(DEMO_INPUT), "action_id": DEMO_ACTION,
                             "mapping_path": str(DEMO_MAPPING), "output_dir": output_dir, "run_id": run_id,
                             "rate_per_minute": 0, "concurrency": 32}, as_json=as_json)
    if not as_json:
        _print_how_to_open(output_dir, run_id)
    return status


def _point_at_emulator(base_url: str, scenario: Any) -> None:
    credentials = scenario.credentials[0]
    os.environ.update({"GENESYS_API_BASE_URL": base_url, "GENESYS_CLIENT_ID": credentials.client_id,
                       "GENESYS_CLIENT_SECRET": credentials.client_secret})
    os.environ.setdefault("DATAACTIONS_AUDIT_KEY", "demo-audit-key-not-for-production")
    os.environ.pop("GENESYS_REGION", None)
    os.environ.pop("GENESYS_LOGIN_BASE_URL", None)


def _print_how_to_open(output_dir: str, run_id: str) -> None:
    results = Path(output_dir) / "results"
    print(f"""
Open the results:
  python -c "import pandas as pd; print(pd.read_parquet('{results}', filters=[('run_id', '=', '{run_id}')]))"
  duckdb -c "SELECT status, count(*) FROM read_parquet('{results}/**/*.parquet', hive_partitioning=true) GROUP BY 1"
""")


def print_actions(name: str | None = None, *, as_json: bool = False) -> int:
    actions = asyncio.run(_with_client(lambda c: c.list_actions(name=name)))
    if as_json:
        print(json.dumps([{k: a.get(k) for k in ("id", "name", "category", "secure")} for a in actions], indent=2))
        return 0
    rows = [(a["id"], a.get("name") or "", a.get("category") or "", str(bool(a.get("secure"))).lower())
            for a in actions]
    out = Console()
    if not out.is_terminal:  # piped: tab-separated lines, nothing cut to a width
        print("\n".join("\t".join(row) for row in [("id", "name", "category", "secure"), *rows]))
        return 0
    table = Table("id", "name", "category", "secure")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    return 0


def print_action(action_id: str) -> int:
    action = asyncio.run(_with_client(lambda c: c.get_action(action_id, expand_contract=True)))
    print(json.dumps(action, indent=2))
    return 0


async def _with_client(call: Any) -> Any:
    settings = load_settings()
    settings.genesys.require_credentials()
    async with GenesysClient.from_settings(settings) as client:
        return await call(client)
