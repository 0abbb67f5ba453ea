"""Nothing leaked: a job run from the command line with a distinctive client secret and audit key, on a `secure`
action, then every place it could have written to is scanned for the secret (also as the Basic-auth form it
travels in), every access token the emulator issued, the audit key, and the raw values of a sensitive input column:

- every file under the output directory: its bytes, and for Parquet files the decoded text of every column;
- the command line's stdout and stderr (the run, and `runs show` listing the failed rows);
- what Prefect keeps: the flow run's parameters, its task runs, logs and artifacts read back through the API,
  every file under PREFECT_HOME, and the bytes of the Prefect server's database itself.
"""

from __future__ import annotations

import base64
import csv
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

from dataactions.emulator import EmulatorServer
from tests.e2e.cli_support import Runner, cli_env, cli_runner, emulator_with_client, harness_api_url

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

SECURE_ACTION = "custom_-_verify-identity"
CLIENT_ID = "privacy-client"
CLIENT_SECRET = f"privacy-client-secret-{secrets.token_hex(16)}"
AUDIT_KEY = f"privacy-audit-key-{secrets.token_hex(16)}"
RUN_ID = "privacy-run"
ROWS = 12
ECHOED = 5  # the row whose remote failure echoes its customerId back in the error message


def customer_id(n: int) -> str:
    return f"pii-{n:03d}-{secrets.token_hex(6)}"


CUSTOMER_IDS = [customer_id(n) for n in range(1, ROWS + 1)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with emulator_with_client(CLIENT_ID, CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def runner(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Runner]:
    env = cli_env(emulator_url=emulator.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                  audit_key=AUDIT_KEY, prefect_home=tmp_path / "prefect-home")
    with cli_runner(env, tmp_path / "logs", tmp_path) as started:
        yield started


def write_identities(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "customerId", "ssnLast4"])
        writer.writerows([f"R{n:03d}", cid, f"{(n * 7919) % 10000:04d}"] for n, cid in enumerate(CUSTOMER_IDS, 1))
    return path


def forbidden(emulator: EmulatorServer) -> dict[str, str]:
    """What must be found nowhere, by a name for the message."""
    tokens = emulator.issued_tokens()
    assert tokens, "the run logged in"
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return {"the client secret": CLIENT_SECRET, "the Basic-auth credentials": basic, "the audit key": AUDIT_KEY,
            **{f"access token #{i}": token for i, token in enumerate(tokens)},
            **{f"the customerId of row {i}": cid for i, cid in enumerate(CUSTOMER_IDS, 1)}}


def assert_clean(where: str, text: str | bytes, secrets_: dict[str, str]) -> None:
    for name, value in secrets_.items():
        found = value.encode() in text if isinstance(text, bytes) else value in text
        assert not found, f"{name} is stored in {where}"


def scan_directory(root: Path, secrets_: dict[str, str]) -> int:
    scanned = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        assert_clean(str(path), path.read_bytes(), secrets_)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            assert_clean(f"the columns of {path}", json.dumps(table.to_pylist(), default=str), secrets_)
        scanned += 1
    return scanned


def test_no_secret_token_audit_key_or_sensitive_input_is_persisted_or_printed(
        emulator: EmulatorServer, runner: Runner, tmp_path: Path) -> None:
    emulator.configure(faults=[{"kind": "status", "status": 400, "match": {"customerId": CUSTOMER_IDS[ECHOED - 1]},
                                "message": f"Response from web service: unknown customer {CUSTOMER_IDS[ECHOED - 1]}"}])
    source, output = write_identities(tmp_path / "identities.csv"), tmp_path / "out"
    status, run = runner.run("enrich", str(source), "--action", SECURE_ACTION, "--output", str(output),
                             "--run-id", RUN_ID, "--key-column", "ref", "--batch-size", "5", "--json")
    assert status == 0, run.stderr()[-3000:]
    report = json.loads(run.stdout())
    assert (report["succeeded"], report["failed"]) == (ROWS - 1, 1)
    shown_status, shown = runner.run("runs", "show", RUN_ID, "--output", str(output))
    assert shown_status == 0 and f"R{ECHOED:03d}" in shown.stdout() and "***" in shown.stdout(), (
        "runs show lists the failed row, its echoed input value masked")

    results = pq.read_table(output / "results" / f"run_id={RUN_ID}").to_pylist()
    assert len(results) == ROWS and all(row["raw_answer"] is None for row in results), "secure: no raw answer"
    audit = pq.read_table(output / "audit" / f"run_id={RUN_ID}").to_pylist()
    assert len(audit) == ROWS and all(len(row["input_hmac"]) == 64 for row in audit)

    leaks = forbidden(emulator)
    assert scan_directory(output, leaks) >= 6  # results, audit, manifest, cache records
    for cli_run in runner.runs:
        assert_clean("the command line's stdout", cli_run.stdout(), leaks)
        assert_clean("the command line's stderr", cli_run.stderr(), leaks)
    scan_directory(tmp_path / "prefect-home", leaks)

    with SyncPrefectClient(harness_api_url()) as client:
        flow_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"enrich {SECURE_ACTION} [{RUN_ID}]"])))
        assert len(flow_runs) == 1
        flow_run = flow_runs[0]
        assert_clean("the flow run (parameters, state)", flow_run.model_dump_json(), leaks)
        assert flow_run.parameters["run_id"] == RUN_ID
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
        assert task_runs and all(assert_clean("a task run", t.model_dump_json(), leaks) is None for t in task_runs)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        assert logs and all(assert_clean("the run's logs", log.model_dump_json(), leaks) is None for log in logs)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
        assert artifacts and all(assert_clean("an artifact", a.model_dump_json(), leaks) is None for a in artifacts)

    database = Path(urlparse(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value())).path)
    files = list(database.parent.glob(database.name + "*"))
    assert database in files, f"the harness database is at {database}"
    for path in files:
        assert_clean(f"the Prefect database {path}", path.read_bytes(), leaks)
