"""Nothing lost, nothing sent twice: `dataactions enrich` killed with SIGKILL at many points, then resumed.

Each round starts the CLI with the same --run-id against an emulator with latency (so a run takes a few seconds),
kills it at one kind of point, and checks what a kill may and may not leave:

| kill point      | when                                                                      |
|-----------------|---------------------------------------------------------------------------|
| mid-batch       | the emulator has served executions of this round, no new part is committed |
| between batches | a new results part has just appeared (the next batch may be in flight)     |
| mid-write       | a temporary part file has just appeared (the writer is between open and rename) |

After every kill: every committed part reads whole; pandas, pyarrow and DuckDB see no temporary file; each
results part has its audit part; no row is committed twice. At the end: exactly one result (and audit) row per
input row, no temporary file left, and no row of a batch committed before a kill was executed again
(the emulator's per-input counts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from dataactions.emulator import EmulatorProcess, Scenario, input_digest
from tests.e2e.cli_support import (
    CUSTOMER_ACTION,
    MAPPING,
    CliRun,
    Runner,
    cli_env,
    cli_runner,
    parts,
    phone,
    poll,
    read_parts,
    temporaries,
    write_customers,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

ROWS, BATCH_SIZE = 240, 20
BATCHES = ROWS // BATCH_SIZE
RUN_ID = "crash-resume"
AUDIT_KEY = "crash-resume-audit-key-0123456789"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    scenario = Scenario.default().model_copy(update={"rate_limit": None, "concurrent_executions_max": None})
    with EmulatorProcess(scenario) as server:
        yield server


@pytest.fixture
def runner(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[Runner]:
    emulator.reset()
    emulator.configure(latency=25, faults=[])
    env = cli_env(emulator_url=emulator.base_url, client_id="demo-client", client_secret="demo-secret",
                  audit_key=AUDIT_KEY, prefect_home=tmp_path / "prefect-home")
    with cli_runner(env, tmp_path / "logs", tmp_path) as started:
        yield started


def enrich_args(source: Path, output: Path) -> list[str]:
    return ["enrich", str(source), "--action", CUSTOMER_ACTION, "--mapping", str(MAPPING), "--output", str(output),
            "--run-id", RUN_ID, "--key-column", "customer_ref", "--batch-size", str(BATCH_SIZE),
            "--concurrency", "4", "--rate-per-minute", "0"]


class Ledger:
    """What the emulator executed per input row, and the count each committed row had when first seen committed."""

    def __init__(self, emulator: EmulatorProcess, output: Path) -> None:
        self.emulator, self.output = emulator, output
        self.committed_counts: dict[int, int] = {}

    def counts(self) -> dict[int, int]:
        by_input = self.emulator.stats()["by_input"].get(CUSTOMER_ACTION, {})
        return {n: by_input.get(input_digest({"phoneNumber": phone(n)}), 0) for n in range(1, ROWS + 1)}

    def executions(self) -> int:
        return int(self.emulator.stats(include_inputs=False)["executions"].get(CUSTOMER_ACTION, 0))

    def check(self, after: str) -> dict[str, Any]:
        """The invariants a kill may not break; records the rows committed so far with their counts."""
        results, audit = read_parts(self.output, "results", RUN_ID), read_parts(self.output, "audit", RUN_ID)
        assert set(results) <= set(audit), f"{after}: a results part without its audit part"
        for name, table in results.items():
            assert audit[name].column("row_key").to_pylist() == table.column("row_key").to_pylist(), name
        numbers = [n for table in results.values() for n in table.column("row_number").to_pylist()]
        assert len(numbers) == len(set(numbers)), f"{after}: a row is committed twice"
        self._readers_see_only_parts(sum(t.num_rows for t in results.values()), after)
        counts = self.counts()
        for number in numbers:
            assert counts[number] >= 1, f"{after}: row {number} is committed but was never executed"
            before = self.committed_counts.setdefault(number, counts[number])
            assert counts[number] == before, (
                f"{after}: row {number} was committed with {before} execution(s) and has been executed again")
        return {"parts": len(results), "rows": len(numbers), "temporaries": sorted(temporaries(self.output, RUN_ID))}

    def _readers_see_only_parts(self, rows: int, after: str) -> None:
        if not rows:
            return
        results = self.output / "results"
        frame = pd.read_parquet(results, filters=[("run_id", "=", RUN_ID)])
        dataset = ds.dataset(results / f"run_id={RUN_ID}", format="parquet")
        glob = str(results / f"run_id={RUN_ID}" / "*.parquet")
        counted = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]
        assert len(frame) == dataset.count_rows() == counted == rows, after
        assert all(not Path(f).name.startswith(".") for f in dataset.files), after


def kill_mid_batch(run: CliRun, ledger: Ledger, output: Path) -> bool:
    """Kill once this round's executions have started and no new part was committed meanwhile."""
    start_executions, start_parts = ledger.executions(), parts(output, "results", RUN_ID)

    def mid_batch() -> bool:
        return ledger.executions() >= start_executions + 8 and parts(output, "results", RUN_ID) == start_parts

    return _kill_when(run, mid_batch, "executions of a new batch", interval=0.005)


def kill_between_batches(run: CliRun, ledger: Ledger, output: Path) -> bool:
    start = parts(output, "results", RUN_ID)
    return _kill_when(run, lambda: len(parts(output, "results", RUN_ID) - start) >= 2, "two new results parts",
                      interval=0)


def kill_mid_write(run: CliRun, ledger: Ledger, output: Path) -> bool:
    leftovers = temporaries(output, RUN_ID)
    return _kill_when(run, lambda: bool(temporaries(output, RUN_ID) - leftovers), "a temporary part file",
                      interval=0)


def _kill_when(run: CliRun, condition: Callable[[], bool], what: str, interval: float) -> bool:
    """SIGKILL `run` as soon as `condition` holds; False when the run ended first."""
    if poll(condition, 120, what, interval=interval, while_alive=run) and run.alive():
        run.kill()
        return True
    run.wait()
    return False


KILLS = [kill_mid_batch, kill_between_batches, kill_mid_write, kill_mid_batch, kill_mid_write]


def test_a_run_killed_at_many_points_resumes_to_one_row_per_input_row_and_resends_no_committed_row(
        emulator: EmulatorProcess, runner: Runner, tmp_path: Path) -> None:
    source, output = write_customers(tmp_path / "customers.csv", ROWS), tmp_path / "out"
    ledger = Ledger(emulator, output)
    rounds: list[dict[str, Any]] = []

    for number, kill in enumerate(KILLS):
        run = runner.start(*enrich_args(source, output))
        killed = kill(run, ledger, output)
        state = ledger.check(f"round {number} ({kill.__name__})") | {"kill": kill.__name__, "killed": killed}
        rounds.append(state)
        if number == 0:
            assert killed and state["parts"] == 0 and ledger.executions() > 0, (
                f"the first kill should land mid-batch, before any commit: {state}")
        if not killed:
            assert run.process.returncode == 0, run.stderr()[-3000:]
            break

    status, final = runner.run(*enrich_args(source, output))
    assert status == 0, final.stderr()[-3000:]
    ledger.check("the final run")

    results = pd.read_parquet(output / "results", filters=[("run_id", "=", RUN_ID)])
    audit = pd.read_parquet(output / "audit", filters=[("run_id", "=", RUN_ID)])
    assert sorted(results.row_number) == list(range(1, ROWS + 1)), "exactly one result row per input row"
    assert len(audit) == ROWS and set(audit.row_key) == set(results.row_key)
    assert set(results.status) == {"succeeded"}
    assert len(parts(output, "results", RUN_ID)) == BATCHES
    assert temporaries(output, RUN_ID) == set(), "a resumed run sweeps what a killed writer left"
    assert min(ledger.counts().values()) >= 1
    assert any(r["kill"] == "kill_mid_write" and r["temporaries"] for r in rounds), (
        f"no kill landed mid-write (between a part's temporary file and its rename): {rounds}")

    shown = json.loads(runner.run("runs", "show", RUN_ID, "--output", str(output), "--json")[1].stdout())
    assert shown["complete"] is True and shown["rows_committed"] == ROWS and shown["temporaries"] == 0
