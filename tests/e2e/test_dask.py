"""Scale-out: `dataactions enrich --runner dask` on a two-process dask.distributed cluster, against a real
`prefect server` and the emulator in its own process, with one OAuth client whose budget the run must keep.

Every process here is started by a fixture or the test and stopped by it, on failure too: the Prefect server (its
own PREFECT_HOME and port), the emulator, the LocalCluster's scheduler, nannies and worker processes, and the
`dataactions` command. The workers and the command take their environment from this process (credentials,
PREFECT_API_URL), so it is set before they start. The flow runs in its own process: in this one, Prefect's
process-wide events worker would stay bound to this module's server after it stops, and the rest of the session
(the test harness) would send its events there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("prefect_dask", reason="the dask extra is not installed")

from distributed import Client, LocalCluster  # noqa: E402
from prefect.client.orchestration import SyncPrefectClient  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName  # noqa: E402

from dataactions.emulator import EmulatorProcess, Scenario  # noqa: E402
from dataactions.emulator.scenario import Credential, RateLimit  # noqa: E402
from scripts.local_stack import REPO, wait_until  # noqa: E402
from tests.e2e.cli_support import prefect_server_at, write_customers  # noqa: E402

pytestmark = pytest.mark.slow

ACTION = "custom_-_customer-by-phone"
MAPPING = Path("data/mappings/customer_by_phone.yaml").resolve()
CLIENT_ID = "dask-e2e-client"
CLIENT_SECRET = f"dask-e2e-secret-{secrets.token_hex(12)}"
AUDIT_KEY = f"dask-e2e-audit-key-{secrets.token_hex(12)}"

ROWS, BATCH_SIZE, IN_FLIGHT, CONCURRENCY = 3000, 250, 2, 16
RATE_PER_MINUTE = 9000  # the run's budget for its OAuth client (150/s): each of the 2 batch tasks gets 75/s
WINDOW = 2.0  # seconds over which the emulator counts what it admitted
BUDGET_PER_WINDOW = RATE_PER_MINUTE / 60 * WINDOW  # 300
# Genesys limits each token: here 172/s, above the budget, so a 429 would mean a task ran past its share.
PER_TOKEN_LIMIT = RateLimit(requests=345, per_seconds=WINDOW)


@dataclass(frozen=True)
class Stack:
    api: str
    emulator: EmulatorProcess
    cluster: LocalCluster


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server_at(home) as api:
        yield api, home


@pytest.fixture(scope="module")
def stack(prefect_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    api, _ = prefect_server
    clients_home = tmp_path_factory.mktemp("prefect-clients-home")
    scenario = Scenario.default().model_copy(update={
        "rate_limit": PER_TOKEN_LIMIT, "credentials": [Credential(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)]})
    with pytest.MonkeyPatch.context() as env, EmulatorProcess(scenario) as emulator:
        for name in ("GENESYS_REGION", "GENESYS_LOGIN_BASE_URL", "GENESYS_EXTRA_CLIENTS", "PREFECT_PROFILE"):
            env.delenv(name, raising=False)
        for name, value in {"GENESYS_API_BASE_URL": emulator.base_url, "GENESYS_CLIENT_ID": CLIENT_ID,
                            "GENESYS_CLIENT_SECRET": CLIENT_SECRET, "DATAACTIONS_AUDIT_KEY": AUDIT_KEY,
                            "PREFECT_API_URL": api, "PREFECT_HOME": str(clients_home), "NO_COLOR": "1"}.items():
            env.setenv(name, value)  # before the cluster starts: its worker processes inherit this environment
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            yield Stack(api, emulator, cluster)


def run_on_dask(stack: Stack, source: Path, output_dir: Path, run_id: str) -> dict[str, Any]:
    """`dataactions enrich ... --runner dask --json` in its own process (ended by `timeout` if it hangs)."""
    command = [sys.executable, "-m", "dataactions.cli", "enrich", str(source), "--action", ACTION,
               "--mapping", str(MAPPING), "--output", str(output_dir), "--run-id", run_id,
               "--key-column", "customer_ref", "--batch-size", str(BATCH_SIZE), "--concurrency", str(CONCURRENCY),
               "--rate-per-minute", str(RATE_PER_MINUTE), "--batches-in-flight", str(IN_FLIGHT),
               "--runner", "dask", "--dask-address", stack.cluster.scheduler_address, "--json"]
    done = subprocess.run(command, cwd=REPO, env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, f"exit status {done.returncode}; stderr:\n{done.stderr[-6000:]}"
    assert CLIENT_SECRET not in done.stdout + done.stderr and AUDIT_KEY not in done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_dask_run_lands_every_row_and_keeps_the_run_budget_across_workers(stack: Stack, tmp_path: Path) -> None:
    source, output_dir = write_customers(tmp_path / "customers.csv", ROWS), tmp_path / "out"

    report = run_on_dask(stack, source, output_dir, "dask-e2e")

    results = pd.read_parquet(output_dir / "results", filters=[("run_id", "=", "dask-e2e")])
    assert len(results) == ROWS and results["row_key"].is_unique
    assert set(results["status"]) == {"succeeded"}
    assert report["rows"] == report["succeeded"] == ROWS
    assert len(pd.read_parquet(output_dir / "audit", filters=[("run_id", "=", "dask-e2e")])) == ROWS

    seen = stack.emulator.stats(include_inputs=False)
    assert seen["executions"][ACTION] == ROWS  # every row sent once
    assert seen["rate_limited"] == 0
    # The run's budget held over all workers and tokens (2 tasks x 75/s; a little slack for the restart of a
    # task's limiter at each batch boundary and for loopback jitter), and the two tasks did run side by side.
    peak = seen["by_client"][CLIENT_ID]["peak_in_window"]
    assert seen["rate_window_seconds"] == WINDOW
    assert BUDGET_PER_WINDOW / IN_FLIGHT * 1.3 < peak <= BUDGET_PER_WINDOW * 1.05, seen["by_client"]

    # Two worker processes did the work: each ran batch tasks, and each logged in once (the flow's health check
    # took the first token; a worker's tasks share its process's token).
    with Client(stack.cluster) as dask:
        executed = dask.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and all(count >= 1 for count in executed.values()), executed
    assert sum(executed.values()) == ROWS // BATCH_SIZE
    assert seen["tokens_issued"] == 3

    # The task runs were recorded by the Prefect server, linked to the flow run.
    with SyncPrefectClient(stack.api) as prefect:
        [flow_run] = prefect.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(like_="dask-e2e")))

        def batch_runs() -> list[Any]:
            runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run.id]}))
            return [r for r in runs if r.name.startswith("batch ") and r.state is not None and r.state.is_completed()]

        wait_until(lambda: len(batch_runs()) == ROWS // BATCH_SIZE, 60, "the batch task runs to reach the server")
    assert flow_run.state is not None and flow_run.state.is_completed()
