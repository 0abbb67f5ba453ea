"""Scheduled runs end to end: a real `prefect server`, the deployments of prefect.yaml, a process worker, the emulator.

The same pieces as `make ui` (scripts/local_stack.py): the server runs on a free loopback port with its own
PREFECT_HOME, the deployments come from `prefect deploy --all --prefect-file prefect.yaml`, and the worker is a
`prefect worker start --run-once` process whose environment, and only its environment, holds the credentials.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, TaskRun

from dataactions.emulator import EmulatorServer
from scripts.local_stack import (
    Service,
    deploy_all,
    ensure_work_pool,
    prefect_env,
    start_worker,
    wait_until,
    worker_env,
)
from tests.e2e.cli_support import emulator_with_client, prefect_server_at, write_customers

pytestmark = pytest.mark.slow

FLOW = "bulk-enrich"
ON_DEMAND, NIGHTLY = "enrich-on-demand", "nightly-enrich"
CLIENT_ID = "e2e-client"
CLIENT_SECRET = f"e2e-client-secret-{secrets.token_hex(12)}"
AUDIT_KEY = f"e2e-audit-key-{secrets.token_hex(12)}"
ROWS, BATCH_SIZE = 25, 10
RUN_ID = "e2e-on-demand"


@dataclass(frozen=True)
class Deployed:
    """A Prefect server with the pool and the deployments of prefect.yaml."""

    api: str
    home: Path
    deploy_output: str


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server_at(home) as api:
        ensure_work_pool(api)
        output = deploy_all(prefect_env(home, api))
        yield Deployed(api, home, output)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with emulator_with_client(CLIENT_ID, CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def client(deployed: Deployed) -> Iterator[SyncPrefectClient]:
    with SyncPrefectClient(deployed.api) as prefect:
        yield prefect


def run_worker_once(deployed: Deployed, emulator: EmulatorServer, log: Path) -> Service:
    env = worker_env(prefect_env(deployed.home, deployed.api), emulator_url=emulator.base_url, client_id=CLIENT_ID,
                     client_secret=CLIENT_SECRET, audit_key=AUDIT_KEY)
    return start_worker(env, log, run_once=True, limit=1)


def wait_for_final_state(client: SyncPrefectClient, flow_run_id: UUID, worker: Service,
                         timeout: float = 120.0) -> FlowRun:
    def final() -> bool:
        state = client.read_flow_run(flow_run_id).state
        return state is not None and state.is_final()

    wait_until(final, timeout, f"flow run {flow_run_id} to finish", interval=0.5, watch=worker)
    return client.read_flow_run(flow_run_id)


def task_runs_of(client: SyncPrefectClient, flow_run_id: UUID) -> list[TaskRun]:
    return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def assert_no_secret(what: str, value: Any) -> None:
    text = json.dumps(value, default=str)
    for secret in (CLIENT_SECRET, AUDIT_KEY):
        assert secret not in text, f"a secret is stored in {what}"


def test_prefect_yaml_deploys_a_nightly_schedule_and_an_on_demand_deployment(deployed: Deployed,
                                                                            client: SyncPrefectClient) -> None:
    nightly = client.read_deployment_by_name(f"{FLOW}/{NIGHTLY}")
    on_demand = client.read_deployment_by_name(f"{FLOW}/{ON_DEMAND}")

    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [  # type: ignore[union-attr]
        ("0 2 * * *", "Europe/Dublin", True)]
    assert on_demand.schedules == []
    for deployment in (nightly, on_demand):
        assert deployment.work_pool_name == "dataactions-pool"
        assert deployment.entrypoint == "flows/enrich.py:bulk_enrich"
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
            "directory": "{{ $DATAACTIONS_HOME }}"}}]
        assert deployment.parameters["action_id"] == "custom_-_customer-by-phone"
        assert not {"client_secret", "audit_key"} & set(deployment.parameters)
    assert client.read_work_pool("dataactions-pool").type == "process"


def test_an_on_demand_run_through_a_worker_lands_every_row_and_persists_no_secret(
        deployed: Deployed, emulator: EmulatorServer, client: SyncPrefectClient, tmp_path: Path) -> None:
    source = write_customers(tmp_path / "customers.csv", ROWS)
    output_dir = tmp_path / "out"
    deployment = client.read_deployment_by_name(f"{FLOW}/{ON_DEMAND}")
    flow_run = client.create_flow_run_from_deployment(deployment.id, parameters={
        "input_path": str(source), "output_dir": str(output_dir), "run_id": RUN_ID, "batch_size": BATCH_SIZE})

    worker = run_worker_once(deployed, emulator, tmp_path / "worker.log")
    try:
        finished = wait_for_final_state(client, flow_run.id, worker)
        assert finished.state is not None and finished.state.is_completed(), (
            f"flow run ended {finished.state!r}; worker log:\n{worker.tail(80)}")
        wait_until(lambda: not worker.alive(), 60, "the --run-once worker to exit")
    finally:
        worker.stop()

    results = pd.read_parquet(output_dir / "results", filters=[("run_id", "=", RUN_ID)])
    audit = pd.read_parquet(output_dir / "audit", filters=[("run_id", "=", RUN_ID)])
    assert len(results) == len(audit) == ROWS
    assert set(results["status"]) == {"succeeded"}
    assert emulator.stats()["executions"]["custom_-_customer-by-phone"] == ROWS

    assert finished.parameters["input_path"] == str(source)
    assert finished.parameters["mapping_path"] == "data/mappings/customer_by_phone.yaml"  # resolved in DATAACTIONS_HOME
    assert_no_secret("the flow run's parameters", finished.parameters)
    assert_no_secret("the flow run's job variables", finished.job_variables)
    assert_no_secret("the deployment", deployment.model_dump(mode="json"))

    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    reports = [a for a in artifacts if a.key == f"enrich-{RUN_ID}"]
    assert len(reports) == 1 and reports[0].type == "markdown"
    assert f"| {ROWS} | {ROWS} | 0 | 0 |" in str(reports[0].data)
    assert_no_secret("the run's artifacts", [a.model_dump(mode="json") for a in artifacts])

    batches = -(-ROWS // BATCH_SIZE)
    wait_until(lambda: sum(t.name.startswith("batch ") for t in task_runs_of(client, flow_run.id)) == batches,
               30, "the batch task runs to reach the API")
    names = sorted(t.name for t in task_runs_of(client, flow_run.id) if t.name.startswith("batch "))
    assert names == [f"batch {i} (rows {i * BATCH_SIZE + 1}+)" for i in range(batches)]

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
    assert logs, "the flow run's logs reached the API"
    assert_no_secret("the flow run's logs", [log.message for log in logs])
