"""`bulk_enrich` end to end: the emulator over loopback, a real Prefect API, real Parquet."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import customer_by_phone
from dataactions.errors import HealthCheckFailed
from tests.flows.conftest import CUSTOMER_ACTION
from tests.flows.support import WORKFLOW, enrich, phone, results, sent, write_customers

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_every_row_ends_as_one_result_row_with_the_mapped_answer(genesys_env: EmulatorServer,
                                                                   tmp_path: Path, output_dir: Path) -> None:
    phones = [phone(n) for n in range(40)] + ["not a phone", "", phone(41)]
    report = enrich(write_customers(tmp_path / "in.csv", phones), output_dir, "all-rows")

    frame = results(output_dir, "all-rows")
    assert len(frame) == len(phones) == report["rows"]
    assert frame.index.is_unique
    assert report["succeeded"] == 41 and report["rejected"] == 2 and report["failed"] == 0
    expected = customer_by_phone({"phoneNumber": phone(7)})["customer"]
    row = frame.loc["C0008"]
    assert (row.status, row.customer_id, row.tier) == ("succeeded", expected["id"], expected["tier"])
    assert row.lifetime_value == pytest.approx(expected["lifetimeValue"])
    assert frame.loc["C0041"].status == "rejected" and "phoneNumber" in frame.loc["C0041"].error_message
    assert frame.loc["C0042"].status == "rejected" and "phoneNumber" in frame.loc["C0042"].error_message
    assert sent(genesys_env, {"phoneNumber": "not a phone"}) == 0
    assert genesys_env.stats()["executions"][CUSTOMER_ACTION] == 41


def test_terminal_errors_are_not_retried_and_transient_ones_are(genesys_env: EmulatorServer,
                                                                 tmp_path: Path, output_dir: Path) -> None:
    genesys_env.configure(faults=[
        {"kind": "status", "status": 500, "match": {"phoneNumber": phone(3)}},
        {"kind": "status", "status": 503, "times": 2, "match": {"phoneNumber": phone(5)}},
        {"kind": "status", "status": 400, "match": {"phoneNumber": phone(6)}},
    ])
    enrich(write_customers(tmp_path / "in.csv", [phone(n) for n in range(10)]), output_dir, "faults")

    frame = results(output_dir, "faults")
    assert (frame.loc["C0004"].status, frame.loc["C0004"].attempts) == ("failed", 1)
    assert (frame.loc["C0007"].status, frame.loc["C0007"].attempts) == ("failed", 1)
    assert (frame.loc["C0006"].status, frame.loc["C0006"].attempts) == ("succeeded", 3)
    assert sent(genesys_env, {"phoneNumber": phone(3)}) == 1
    assert sent(genesys_env, {"phoneNumber": phone(5)}) == 3
    assert (frame.status == "succeeded").sum() == 8


def test_a_token_that_expires_mid_run_fails_no_row(genesys_env: EmulatorServer, tmp_path: Path,
                                                   output_dir: Path) -> None:
    genesys_env.configure(token_lifetime_seconds=1, latency=20)  # 400 rows x 20 ms / 4 in flight >= 2 s > 1 s
    report = enrich(write_customers(tmp_path / "in.csv", [phone(n) for n in range(400)]), output_dir, "token",
                    concurrency=4)

    assert report["failed"] == 0 and report["succeeded"] == 400
    assert genesys_env.stats()["tokens_issued"] >= 2


def test_a_429_storm_ends_with_every_row_done_and_retry_after_honoured(genesys_env: EmulatorServer,
                                                                       tmp_path: Path, output_dir: Path) -> None:
    genesys_env.configure(rate_limit={"requests": 25, "per_seconds": 1})
    report = enrich(write_customers(tmp_path / "in.csv", [phone(n) for n in range(80)]), output_dir, "storm")

    stats = genesys_env.stats()
    assert report["succeeded"] == 80
    assert stats["rate_limited"] > 0
    assert stats["requests_before_retry_after"] == 0


def test_a_rerun_of_a_finished_run_sends_nothing(genesys_env: EmulatorServer, tmp_path: Path,
                                                 output_dir: Path) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(50)])
    enrich(source, output_dir, "rerun")
    before = genesys_env.stats()["executions"][CUSTOMER_ACTION]

    report = enrich(source, output_dir, "rerun")

    assert genesys_env.stats()["executions"][CUSTOMER_ACTION] == before == 50
    assert report["resumed_batches"] == report["batches"] and report["rows"] == 50
    assert len(results(output_dir, "rerun")) == 50


def test_workflow_mode_polls_each_execution_to_completion(genesys_env: EmulatorServer, tmp_path: Path,
                                                          output_dir: Path) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(6)])
    report = enrich(source, output_dir, "workflow", mode="workflow", flow_id=WORKFLOW, action_id=None,
                    mapping_path=None)

    frame = results(output_dir, "workflow")
    assert report["succeeded"] == 6
    assert genesys_env.stats()["workflow_launches"] == 6
    assert frame.raw_answer.notna().all()


def test_the_health_check_stops_the_run_before_any_row_is_sent(genesys_env: EmulatorServer, tmp_path: Path,
                                                               output_dir: Path) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(5)])

    with pytest.raises(HealthCheckFailed, match="custom_-_no-such-action"):
        enrich(source, output_dir, "unhealthy", action_id="custom_-_no-such-action")

    assert sum(genesys_env.stats()["executions"].values()) == 0
    assert not (output_dir / "results").exists()
