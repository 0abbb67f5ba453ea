"""Every fault the emulator can inject, one flow run each: each row ends in a deliberate state, transient faults
are retried with backoff to the right outcome, terminal ones are not retried, and no run hangs (each test has a
timeout well above its run, so a hang fails it instead of stalling the suite).

The retry knobs come from the environment as in production: DATAACTIONS_MAX_ATTEMPTS, DATAACTIONS_RETRY_UNSAFE,
DATAACTIONS_BACKOFF_BASE_SECONDS (small here so that backoff costs milliseconds), DATAACTIONS_WORKFLOW_*.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dataactions import cli
from dataactions.emulator import EmulatorServer, Scenario
from dataactions.errors import HealthCheckFailed
from tests.flows.conftest import CUSTOMER_ACTION
from tests.flows.support import WORKFLOW, enrich, executions, phone, results, sent, write_customers

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.timeout(180)]

_DEFAULT = Scenario.default()


@pytest.fixture(autouse=True)
def quick_retries(genesys_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """Backoff in milliseconds; the catalog, workflows and limits this module changes are restored afterwards."""
    monkeypatch.setenv("DATAACTIONS_BACKOFF_BASE_SECONDS", "0.01")
    monkeypatch.setenv("DATAACTIONS_BACKOFF_MAX_SECONDS", "0.05")
    monkeypatch.setenv("DATAACTIONS_MAX_ATTEMPTS", "3")
    yield genesys_env
    genesys_env.configure(actions=[a.model_dump(mode="json") for a in _DEFAULT.actions],
                          workflows=[w.model_dump(mode="json") for w in _DEFAULT.workflows],
                          concurrent_executions_max=None, faults=[], latency=0)


def customers(tmp_path: Path, count: int) -> Path:
    return write_customers(tmp_path / "in.csv", [phone(n) for n in range(1, count + 1)])


def key(n: int) -> str:
    return f"C{n:04d}"


def outcome(frame: pd.DataFrame, n: int) -> tuple[str, str | None, int]:
    """(status, error code, attempts) of input row `n`."""
    row = frame.loc[key(n)]
    return row.status, None if pd.isna(row.error_code) else row.error_code, int(row.attempts)


def fault(kind: str, rows: list[int], **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "match": {"phoneNumber": [phone(n) for n in rows]}, **fields}


@contextmanager
def once(condition: Callable[[], bool], action: Callable[[], object]) -> Iterator[threading.Event]:
    """A watcher that runs `action` once `condition` holds (polled every few ms) while the block runs."""
    done, stop = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if condition():
                action()
                done.set()
                return
            stop.wait(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_429_with_retry_after_is_waited_out_on_that_token(genesys_env: EmulatorServer, tmp_path: Path,
                                                            output_dir: Path) -> None:
    genesys_env.configure(faults=[fault("status", [2, 9], status=429, retry_after=1, times=1)])
    report = enrich(customers(tmp_path, 12), output_dir, "f429")

    frame = results(output_dir, "f429")
    assert report["succeeded"] == 12
    assert outcome(frame, 2) == outcome(frame, 9) == ("succeeded", None, 2)
    stats = genesys_env.stats()
    assert stats["rate_limited"] == 2 and stats["requests_before_retry_after"] == 0


def test_a_429_from_the_concurrent_execution_limit_is_retried_to_success(genesys_env: EmulatorServer,
                                                                         tmp_path: Path, output_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_MAX_ATTEMPTS", "8")
    genesys_env.configure(concurrent_executions_max=2, latency=50)
    report = enrich(customers(tmp_path, 10), output_dir, "fconc", concurrency=4)

    frame = results(output_dir, "fconc")
    stats = genesys_env.stats()
    assert report["succeeded"] == 10 and (frame.attempts > 1).any()
    assert stats["concurrency_limited"] > 0 and stats["max_in_flight"] <= 2


def test_a_remote_500_is_terminal_and_502_503_are_retried(genesys_env: EmulatorServer, tmp_path: Path,
                                                          output_dir: Path) -> None:
    genesys_env.configure(faults=[
        fault("status", [1], status=500),
        fault("status", [2], status=502, times=1),
        fault("status", [3], status=503, times=2),
        fault("status", [4], status=503),
    ])
    enrich(customers(tmp_path, 6), output_dir, "f5xx")

    frame = results(output_dir, "f5xx")
    assert outcome(frame, 1) == ("failed", "internal.server.error", 1)
    assert "ACTION.REMOTE_ENDPOINT" in frame.loc[key(1)].error_message
    assert outcome(frame, 2) == ("succeeded", None, 2)
    assert outcome(frame, 3) == ("succeeded", None, 3)
    assert outcome(frame, 4) == ("failed", "service.unavailable", 3)
    assert [sent(genesys_env, {"phoneNumber": phone(n)}) for n in range(1, 7)] == [1, 2, 3, 3, 1, 1]


def test_a_remote_past_its_timeout_seconds_is_retried_then_fails_as_a_timeout(genesys_env: EmulatorServer,
                                                                              tmp_path: Path,
                                                                              output_dir: Path) -> None:
    actions = [a.model_dump(mode="json") | ({"timeout_seconds": 0.2} if a.id == CUSTOMER_ACTION else {})
               for a in _DEFAULT.actions]
    genesys_env.configure(actions=actions, faults=[fault("timeout", [1], times=1), fault("timeout", [2])])
    enrich(customers(tmp_path, 4), output_dir, "ftimeout")

    frame = results(output_dir, "ftimeout")
    assert outcome(frame, 1) == ("succeeded", None, 2)
    assert outcome(frame, 2) == ("failed", "request.timeout", 3)
    assert "timed out after 0.2 seconds" in frame.loc[key(2)].error_message
    assert outcome(frame, 3) == ("succeeded", None, 1)


def test_no_answer_within_the_client_timeout_is_a_timeout_failure(genesys_env: EmulatorServer, tmp_path: Path,
                                                                  output_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_REQUEST_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("DATAACTIONS_MAX_ATTEMPTS", "2")
    actions = [a.model_dump(mode="json") | ({"latency": 1000} if a.id == CUSTOMER_ACTION else {})
               for a in _DEFAULT.actions]
    genesys_env.configure(actions=actions)
    enrich(customers(tmp_path, 2), output_dir, "fclienttimeout")

    frame = results(output_dir, "fclienttimeout")
    assert outcome(frame, 1) == outcome(frame, 2) == ("failed", "timeout", 2)


@pytest.mark.parametrize("kind", ["malformed_json", "drop_connection"])
def test_a_broken_answer_is_retried_when_unsafe_retries_are_on_and_not_when_off(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch,
        kind: str) -> None:
    code = {"malformed_json": "malformed.response", "drop_connection": "transport"}[kind]
    genesys_env.configure(faults=[fault(kind, [1], times=1), fault(kind, [2])])
    enrich(customers(tmp_path, 3), output_dir, f"{kind}-on")
    on = results(output_dir, f"{kind}-on")
    assert outcome(on, 1) == ("succeeded", None, 2)
    assert outcome(on, 2) == ("failed", code, 3)
    assert outcome(on, 3) == ("succeeded", None, 1)

    monkeypatch.setenv("DATAACTIONS_RETRY_UNSAFE", "false")
    genesys_env.reset()
    enrich(customers(tmp_path, 3), output_dir, f"{kind}-off")
    off = results(output_dir, f"{kind}-off")
    assert outcome(off, 1) == outcome(off, 2) == ("failed", code, 1), "the POST may have run: not sent again"
    assert sent(genesys_env, {"phoneNumber": phone(1)}) == 1


def test_tokens_revoked_mid_run_are_renewed_and_no_row_fails(genesys_env: EmulatorServer, tmp_path: Path,
                                                             output_dir: Path) -> None:
    genesys_env.configure(faults=[fault("revoke_token", [10, 30], times=1)], latency=5)
    with once(lambda: executions(genesys_env) >= 45, genesys_env.revoke_tokens) as revoked:
        report = enrich(customers(tmp_path, 60), output_dir, "frevoked", concurrency=4)

    assert revoked.is_set() and report["succeeded"] == 60 and report["failed"] == 0
    stats = genesys_env.stats()
    assert stats["faults_fired"] == [2] and stats["tokens_issued"] >= 4, "three revocations, three renewals"
    assert stats["responses"].get("401", 0) >= 3
    assert sent(genesys_env, {"phoneNumber": phone(10)}) == 2, "the refused request is replayed once, renewed"


def test_the_token_endpoint_down_for_a_while_delays_rows_but_fails_none(genesys_env: EmulatorServer,
                                                                        tmp_path: Path, output_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_MAX_ATTEMPTS", "6")
    genesys_env.configure(latency=5)

    def login_service_goes_down() -> None:
        genesys_env.configure(faults=[{"kind": "status", "status": 503, "endpoint": "token", "times": 3}])
        genesys_env.revoke_tokens()

    with once(lambda: executions(genesys_env) >= 10, login_service_goes_down) as down:
        report = enrich(customers(tmp_path, 40), output_dir, "ftokendown", concurrency=4)

    frame = results(output_dir, "ftokendown")
    stats = genesys_env.stats()
    assert down.is_set() and report["succeeded"] == 40
    assert stats["token_responses"].get("503") == 3 and stats["faults_fired"] == [3]
    assert (frame.attempts > 1).any(), "rows whose token could not be renewed were retried"


def test_the_token_endpoint_down_at_the_start_fails_the_health_check_before_any_row(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    genesys_env.configure(faults=[{"kind": "status", "status": 503, "endpoint": "token"}])
    with pytest.raises(HealthCheckFailed, match="logging in at .*/oauth/token"):
        enrich(customers(tmp_path, 5), output_dir, "floginfail")
    assert executions(genesys_env) == 0 and not (output_dir / "results").exists()


def _workflows(**rules: str) -> list[dict[str, Any]]:
    flow = _DEFAULT.workflows[0].model_dump(mode="json")
    flow["duration_seconds"] = 0.05
    flow["outcomes_by_input"] = [{"match": {"phoneNumber": number}, "outcome": outcome}
                                 for number, outcome in rules.items()]
    return [flow]


def test_workflows_ending_failed_or_error_are_terminal_and_one_never_ending_hits_its_deadline(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_WORKFLOW_POLL_INITIAL_SECONDS", "0.02")
    monkeypatch.setenv("DATAACTIONS_WORKFLOW_POLL_MAX_SECONDS", "0.1")
    monkeypatch.setenv("DATAACTIONS_WORKFLOW_DEADLINE_SECONDS", "1")
    genesys_env.configure(workflows=_workflows(**{phone(1): "FAILED", phone(2): "ERROR", phone(3): "RUNNING"}))
    report = enrich(customers(tmp_path, 5), output_dir, "fworkflow", mode="workflow", flow_id=WORKFLOW,
                    action_id=None, mapping_path=None)

    frame = results(output_dir, "fworkflow")
    assert outcome(frame, 1) == ("failed", "workflow.failed", 1)
    assert outcome(frame, 2) == ("failed", "workflow.failed", 1)
    assert outcome(frame, 3) == ("failed", "workflow.deadline", 1)
    assert "deadline" in frame.loc[key(3)].error_message
    assert outcome(frame, 4) == outcome(frame, 5) == ("succeeded", None, 1)
    assert report["failed"] == 3 and genesys_env.stats()["workflow_launches"] == 5, "no workflow launched twice"


def test_the_circuit_breaker_stops_a_run_whose_remote_is_down_and_the_run_resumes(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATAACTIONS_BREAKER_WINDOW", "20")
    rows, healthy = 300, 32
    source = customers(tmp_path, rows)
    genesys_env.configure(faults=[fault("status", list(range(healthy + 1, rows + 1)), status=503)])
    args = ["enrich", str(source), "--action", CUSTOMER_ACTION, "--output", str(output_dir), "--run-id", "fbreaker",
            "--key-column", "customer_ref", "--batch-size", "16", "--concurrency", "4", "--rate-per-minute", "0"]

    assert cli.main(args) == 4
    message = capsys.readouterr().err
    assert "run stopped" in message and "circuit open" in message and "503" in message
    assert "the remote looks down" in message and "rerun with the same run id to resume" in message
    sent_before = executions(genesys_env)
    assert sent_before < rows // 3, f"{sent_before} executions: the breaker should stop far before all {rows} rows"
    kept = results(output_dir, "fbreaker")
    assert set(kept.row_number) >= set(range(1, healthy + 1)) and set(kept.status) <= {"succeeded", "failed"}

    genesys_env.configure(faults=[])
    assert cli.main(args) == 0
    final = results(output_dir, "fbreaker")
    assert sorted(final.row_number) == list(range(1, rows + 1)) and set(final.status) == {"succeeded"}
    for n in range(1, healthy + 1):
        assert sent(genesys_env, {"phoneNumber": phone(n)}) == 1, f"committed row {n} was sent again"


def test_max_failed_rows_stops_the_run_cleanly_and_it_resumes(genesys_env: EmulatorServer, tmp_path: Path,
                                                              output_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows = 160
    source = customers(tmp_path, rows)
    genesys_env.configure(faults=[fault("status", [2, 5, 7, 11], status=500)])
    args = ["enrich", str(source), "--action", CUSTOMER_ACTION, "--output", str(output_dir), "--run-id", "fceiling",
            "--key-column", "customer_ref", "--batch-size", "16", "--rate-per-minute", "0"]

    assert cli.main([*args, "--max-failed-rows", "3"]) == 4
    message = capsys.readouterr().err
    assert "4 failed rows out of" in message and "--max-failed-rows 3" in message and "resume" in message
    kept = results(output_dir, "fceiling")
    assert set(range(1, 17)) <= set(kept.row_number) and (kept.status == "failed").sum() == 4
    sent_before = executions(genesys_env)
    assert sent_before < rows

    assert cli.main([*args, "--max-failed-rows", "10"]) == 0, "a resume under a higher ceiling completes"
    final = results(output_dir, "fceiling")
    assert sorted(final.row_number) == list(range(1, rows + 1))
    for n in range(1, 17):
        assert sent(genesys_env, {"phoneNumber": phone(n)}) == 1, f"committed row {n} was sent again"
