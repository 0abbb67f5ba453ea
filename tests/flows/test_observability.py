"""What operators see of a run: its Prefect artifacts (read back through the Prefect client) and its Prometheus
metrics (scraped over HTTP while the run goes and after)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import Artifact
from prometheus_client.parser import text_string_to_metric_families

from dataactions.emulator import EmulatorServer
from dataactions.pipeline import BatchSummary
from dataactions.progress import listen
from dataactions.telemetry import shutdown_metrics
from flows.enrich import bulk_enrich
from tests.e2e.cli_support import poll
from tests.flows.conftest import CUSTOMER_ACTION
from tests.flows.support import MAPPING, phone, write_customers

pytestmark = pytest.mark.usefixtures("prefect_api")


def flow_state(input_path: Path, output_dir: Path, run_id: str, **options: Any) -> Any:
    """Run `bulk_enrich` (batches of 8, no rate limit, `options` on top); return its final state."""
    return asyncio.run(bulk_enrich(
        input_path=str(input_path), output_dir=str(output_dir), run_id=run_id, action_id=CUSTOMER_ACTION,
        mapping_path=str(MAPPING), key_column="customer_ref", rate_per_minute=0, batch_size=8, concurrency=8,
        return_state=True, **options))


def run_flow(input_path: Path, output_dir: Path, run_id: str) -> tuple[dict[str, Any], Any]:
    """Run `bulk_enrich`; return its result and its flow run id."""
    state = flow_state(input_path, output_dir, run_id)
    return state.result(), state.state_details.flow_run_id


async def _artifacts_of(flow_run_id: Any) -> list[Artifact]:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def artifacts_of(flow_run_id: Any) -> dict[str, Artifact]:
    return {artifact.key: artifact for artifact in asyncio.run(_artifacts_of(flow_run_id)) if artifact.key}


def test_a_run_publishes_its_report_its_failures_and_its_progress(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    genesys_env.configure(faults=[
        {"kind": "status", "status": 500, "match": {"phoneNumber": phone(3)}},
        {"kind": "status", "status": 503, "times": 2, "match": {"phoneNumber": phone(5)}},
        {"kind": "status", "status": 429, "retry_after": 0, "times": 1, "match": {"phoneNumber": phone(7)}},
    ])
    phones = [phone(n) for n in range(20)] + ["not a phone"]
    report, flow_run_id = run_flow(write_customers(tmp_path / "in.csv", phones), output_dir, "observed")

    artifacts = artifacts_of(flow_run_id)
    assert {key: a.type for key, a in artifacts.items()} == {
        "enrich-observed": "markdown", "enrich-observed-failures": "table", "enrich-observed-progress": "progress"}

    results = pd.read_parquet(output_dir / "results", filters=[("run_id", "=", "observed")]).set_index("row_key")
    audit = pd.read_parquet(output_dir / "audit", filters=[("run_id", "=", "observed")]).set_index("row_key")
    failed_correlation_id = audit.loc["C0004", "correlation_id"]
    assert results.loc["C0004", "status"] == "failed" and failed_correlation_id

    markdown = str(artifacts["enrich-observed"].data)
    assert "| 21 | 19 | 1 | 1 |" in markdown  # rows, succeeded, failed, rejected
    p50, p95, p99 = (audit.duration_ms.dropna().quantile(q) for q in (0.5, 0.95, 0.99))
    assert report["latency_ms"]["p50"] == pytest.approx(p50, abs=0.1)
    assert report["latency_ms"]["p99"] == pytest.approx(p99, abs=0.1)
    assert f"| {p50:,.0f} | {p95:,.0f} | {p99:,.0f} |" in markdown
    assert report["retries"] == 3 and report["rate_limited"] == 1
    assert "| 20 | 23 | 3 | 1 |" in markdown  # invocations, attempts, retries, 429 answers
    assert "## Top errors" in markdown and failed_correlation_id in markdown and "`rejected`" in markdown
    assert str(output_dir / "results" / "run_id=observed") in markdown

    failures = json.loads(artifacts["enrich-observed-failures"].data)
    assert [(row["row_key"], row["status"]) for row in failures] == [("C0004", "failed"), ("C0021", "rejected")]
    assert set(failures[0]) == {"row_key", "status", "error_code", "error_message", "correlation_id"}
    assert failures[0]["correlation_id"] == failed_correlation_id and failures[0]["error_code"]
    assert "phoneNumber" in failures[1]["error_message"] and "not a phone" not in json.dumps(failures)

    assert artifacts["enrich-observed-progress"].data == 100.0


async def _batch_task_names(flow_run_id: Any) -> list[str]:
    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(run.name for run in runs if run.name.startswith("batch"))


async def _batch_log_lines(flow_run_id: Any) -> list[str]:
    async with get_client() as client:
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return sorted(log.message for log in logs if log.message.startswith("batch"))


def test_consecutive_batches_share_a_task_run_and_each_is_committed_and_counted_on_its_own(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_BATCHES_PER_TASK", "2")
    progress: list[int] = []
    unlisten = listen(lambda run_id, summary: progress.append(summary.index))
    try:
        report, flow_run_id = run_flow(write_customers(tmp_path / "in.csv", [phone(n) for n in range(36)]),
                                       output_dir, "grouped")  # 5 batches of 8 rows (the last one 4)
    finally:
        unlisten()

    expected = ["batch 4 (rows 33+)", "batches 0-1 (rows 1-16)", "batches 2-3 (rows 17-32)"]
    poll(lambda: asyncio.run(_batch_task_names(flow_run_id)) == expected, 30, "the task runs to be recorded")
    outcomes = ["batch 4: 4 rows, 4 succeeded, 0 failed, 0 rejected",  # one line per task run
                "batches 0-1: 16 rows, 16 succeeded, 0 failed, 0 rejected",
                "batches 2-3: 16 rows, 16 succeeded, 0 failed, 0 rejected"]
    poll(lambda: asyncio.run(_batch_log_lines(flow_run_id)) == outcomes, 30, "the task runs' logs to be stored")
    assert sorted(progress) == [0, 1, 2, 3, 4] and report["batches"] == 5 and report["succeeded"] == 36
    parts = sorted(path.name for path in (output_dir / "results" / "run_id=grouped").glob("*.parquet"))
    assert len(parts) == 5 and parts[0].startswith("part-000000-") and parts[4].startswith("part-000004-")


def test_a_failure_ceiling_passed_inside_a_task_run_still_reports_all_its_committed_batches(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_BATCHES_PER_TASK", "2")
    genesys_env.configure(faults=[{"kind": "status", "status": 500, "match": {"phoneNumber": [phone(1), phone(2)]}}])
    try:
        state = flow_state(write_customers(tmp_path / "in.csv", [phone(n) for n in range(40)]), output_dir,
                           "ceiling", batches_in_flight=1, max_failed_rows=1)
    finally:
        genesys_env.configure(faults=[])

    assert state.is_failed() and "passed the ceiling" in str(state.message)
    committed = pd.read_parquet(output_dir / "results", filters=[("run_id", "=", "ceiling")])
    assert len(committed) == 16, "the stopping task run held batches 0 and 1, both committed"
    report = str(artifacts_of(state.state_details.flow_run_id)["enrich-ceiling"].data)
    assert "| 16 | 14 | 2 | 0 |" in report  # rows, succeeded, failed, rejected: both batches counted


def test_a_rerun_publishes_the_whole_run_again(genesys_env: EmulatorServer, tmp_path: Path,
                                              output_dir: Path) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(10)] + ["bad"])
    run_flow(source, output_dir, "Again_1")
    _, flow_run_id = run_flow(source, output_dir, "Again_1")

    artifacts = artifacts_of(flow_run_id)
    key = next(k for k in artifacts if artifacts[k].type == "markdown")
    assert key.startswith("enrich-again-1-") and all(k == key or k.startswith(key + "-") for k in artifacts)
    assert "| 11 | 10 | 0 | 1 |" in str(artifacts[key].data) and "2 (2)" in str(artifacts[key].data)
    assert len(json.loads(artifacts[f"{key}-failures"].data)) == 1
    assert artifacts[f"{key}-progress"].data == 100.0


def test_a_retry_run_counts_its_progress_in_the_rows_it_sends_again(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    genesys_env.configure(faults=[{"kind": "status", "status": 500,
                                   "match": {"phoneNumber": [phone(2), phone(7)]}}])
    run_flow(write_customers(tmp_path / "in.csv", [phone(n) for n in range(12)]), output_dir, "first")
    genesys_env.configure(faults=[])

    state = asyncio.run(bulk_enrich(output_dir=str(output_dir), retry_failed_of="first", rate_per_minute=0,
                                    return_state=True))

    assert state.result()["rows"] == 2
    progress = artifacts_of(state.state_details.flow_run_id)["enrich-first-retry-1-progress"]
    assert progress.data == 100.0 and "(2 in all)" in str(progress.description)


# -- metrics ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return [(s.name, {k: v for k, v in s.labels.items() if v}, s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(value for sample, found, value in samples
               if sample == name and all(found.get(k) == v for k, v in labels.items()))


@pytest.fixture
def prometheus_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = free_port()
    monkeypatch.setenv("DATAACTIONS_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("DATAACTIONS_METRICS_PORT", str(port))
    yield port
    shutdown_metrics()


def test_prometheus_can_scrape_a_run_while_it_goes_and_after(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, prometheus_port: int) -> None:
    genesys_env.configure(latency=5)
    phones = [phone(n) for n in range(60)] + ["not a phone", ""]
    during: list[list[tuple[str, dict[str, str], float]]] = []

    def after_a_batch(run_id: str, summary: BatchSummary) -> None:
        if not during:
            during.append(scrape(prometheus_port))

    unlisten = listen(after_a_batch)
    try:
        report, _ = run_flow(write_customers(tmp_path / "in.csv", phones), output_dir, "scraped")
    finally:
        unlisten()
    after = scrape(prometheus_port)

    sent = genesys_env.stats()["executions"][CUSTOMER_ACTION]
    assert sent == report["succeeded"] == 60
    first = total(during[0], "dataactions_invocations_total")
    assert 8 <= first <= sent  # at least the first batch, counted while the run went on
    action = {"dataactions_action_id": CUSTOMER_ACTION}
    assert total(after, "dataactions_invocations_total", dataactions_outcome="succeeded", **action) == sent
    assert total(after, "dataactions_invocations_total", dataactions_outcome="failed") == 0
    assert total(after, "dataactions_invocation_duration_seconds_count", **action) == sent
    assert 0 < total(after, "dataactions_invocation_duration_seconds_sum") < sent * 5
    assert total(after, "dataactions_rows_total", dataactions_outcome="rejected") == 2
    execute = {"url_template": "/api/v2/integrations/actions/{actionId}/execute", "http_request_method": "POST"}
    assert total(after, "http_client_request_duration_seconds_count", http_response_status_code="200",
                 **execute) == sent

    ours = [(name, labels) for name, labels, _ in after if name.startswith(("dataactions_", "http_client_"))]
    values = {value for _, labels in ours for value in labels.values()}
    row_identifiers = {*phones, *(f"C{n:04d}" for n in range(1, len(phones) + 1))} - {""}
    assert not values & row_identifiers
    assert not any(key.startswith(("row", "input", "correlation")) for _, labels in ours for key in labels)
