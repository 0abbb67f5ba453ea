"""`--retry-failed RUN`: only the rows whose latest outcome is `failed` go out again, as a run of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataactions import cli
from dataactions.emulator import EmulatorServer
from dataactions.runs import latest_outcomes, read_manifest, show_run
from tests.flows.support import audit, enrich, executions, phone, results, sent, write_customers

pytestmark = pytest.mark.usefixtures("prefect_api")

ROWS = 40
BROKEN = [3, 17, 18, 33]  # input rows (1-based) whose remote endpoint fails terminally (500) on the first run


def test_retry_failed_sends_only_the_failed_rows_again_and_every_attempt_stays_visible(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(1, ROWS + 1)])
    genesys_env.configure(faults=[{"kind": "status", "status": 500,
                                   "match": {"phoneNumber": [phone(n) for n in BROKEN]}}])
    first = enrich(source, output_dir, "nightly", batch_size=8)
    assert (first["failed"], first["succeeded"]) == (len(BROKEN), ROWS - len(BROKEN))
    frame = results(output_dir, "nightly")
    assert set(frame[frame.status == "failed"].row_number) == set(BROKEN)
    assert set(frame[frame.status == "failed"].attempts) == {1}, "a remote 500 is terminal: not retried"

    genesys_env.configure(faults=[])
    retry = enrich(None, output_dir, None, retry_failed_of="nightly", action_id=None, mapping_path=None,
                   key_column=None, batch_size=None)

    assert retry["run_id"] == "nightly-retry-1" and (retry["rows"], retry["succeeded"]) == (len(BROKEN), len(BROKEN))
    for n in range(1, ROWS + 1):
        assert sent(genesys_env, {"phoneNumber": phone(n)}) == (2 if n in BROKEN else 1), f"row {n}"
    assert executions(genesys_env) == ROWS + len(BROKEN)
    again = results(output_dir, "nightly-retry-1")
    assert sorted(again.row_number) == BROKEN and list(again.index) == [f"C{n:04d}" for n in BROKEN]
    assert set(again.status) == {"succeeded"} and again.customer_id.notna().all()
    assert list(audit(output_dir, "nightly-retry-1").index) == list(again.index)
    assert len(results(output_dir, "nightly")) == ROWS, "the first run's results are kept as they were"

    latest = latest_outcomes(output_dir, "nightly").to_pandas()
    assert len(latest) == ROWS and set(latest.status) == {"succeeded"}
    assert sorted(latest[latest.run_id == "nightly-retry-1"].row_number) == BROKEN
    manifest = read_manifest(output_dir, "nightly-retry-1")
    assert manifest is not None and (manifest["retry_of"], manifest["attempt"]) == ("nightly", 1)
    assert show_run(output_dir, "nightly").retries == ["nightly-retry-1"]

    nothing_left = enrich(None, output_dir, None, retry_failed_of="nightly", action_id=None, mapping_path=None,
                          key_column=None, batch_size=None)
    assert nothing_left["run_id"] == "nightly-retry-2" and nothing_left["rows"] == 0
    assert executions(genesys_env) == ROWS + len(BROKEN)


def test_the_command_line_retries_failed_rows_and_shows_runs(genesys_env: EmulatorServer, tmp_path: Path,
                                                             output_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    source = write_customers(tmp_path / "in.csv", [phone(n) for n in range(100, 112)])
    genesys_env.configure(faults=[{"kind": "status", "status": 500, "match": {"phoneNumber": phone(104)}}])
    assert cli.main(["enrich", str(source), "--action", "custom_-_customer-by-phone", "--output", str(output_dir),
                     "--run-id", "cli-run", "--key-column", "customer_ref", "--batch-size", "5",
                     "--rate-per-minute", "0", "--json"]) == 0
    capsys.readouterr()

    assert cli.main(["runs", "show", "cli-run", "--output", str(output_dir)]) == 0
    shown = capsys.readouterr().out
    assert "committed: 3 batches, 12 rows (11 succeeded, 1 failed, 0 rejected)" in shown
    assert "row 5 (key C0005): internal.server.error" in shown and "pending: 0 batches" in shown

    genesys_env.configure(faults=[])
    assert cli.main(["enrich", "--retry-failed", "cli-run", "--output", str(output_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["run_id"], report["rows"], report["succeeded"]) == ("cli-run-retry-1", 1, 1)
    assert sent(genesys_env, {"phoneNumber": phone(104)}) == 2 and executions(genesys_env) == 13

    assert cli.main(["runs", "show", "cli-run-retry-1", "--output", str(output_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["complete"] is True and status["rows_committed"] == 1 and status["manifest"]["retry_of"] == "cli-run"

    assert cli.main(["runs", "show", "no-such-run", "--output", str(output_dir)]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert cli.main(["enrich", "--output", str(output_dir)]) == 2
    assert "an input file is required" in capsys.readouterr().err
