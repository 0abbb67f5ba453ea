"""Runs on disk (dataactions.runs): manifests, latest outcome per row over retries, retry batches, `runs show`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from dataactions.errors import ConfigurationError
from dataactions.job import JobSpec
from dataactions.mapping import Mapping
from dataactions.pipeline import part_name
from dataactions.readers import iter_batches
from dataactions.runs import (
    batches_for,
    begin_run,
    failed_rows,
    latest_outcomes,
    plan_run,
    read_manifest,
    retry_chain,
    show_run,
    write_manifest,
)
from dataactions.sink import PartStore, build_results_table

SECRET = "client-secret-that-must-not-land-anywhere"
AUDIT_KEY = "audit-key-that-must-not-land-anywhere"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name, value in {"GENESYS_API_BASE_URL": "http://127.0.0.1:9", "GENESYS_CLIENT_ID": "c",
                        "GENESYS_CLIENT_SECRET": SECRET, "DATAACTIONS_AUDIT_KEY": AUDIT_KEY,
                        "DATAACTIONS_OUTPUT_DIR": str(tmp_path / "out")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GENESYS_REGION", raising=False)
    monkeypatch.delenv("DATAACTIONS_BATCH_SIZE", raising=False)
    return tmp_path / "out"


def write_input(path: Path, keys: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "phoneNumber"])
        writer.writerows([key, f"+1555{n:07d}"] for n, key in enumerate(keys, start=1))
    return path


def spec_for(source: Path, out: Path, run_id: str, batch_size: int = 3, **more: Any) -> JobSpec:
    return JobSpec(input_path=str(source), output_dir=str(out), run_id=run_id, action_id="custom_-_a",
                   key_column="ref", batch_size=batch_size, **more)


def commit(spec: JobSpec, statuses: dict[int, str], *, audit_only: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Commit the batches of `spec` as the pipeline would, each row with the status given by row number."""
    results, audit = PartStore(spec.output_dir, "results"), PartStore(spec.output_dir, "audit")
    for batch in batches_for(spec):
        rows = [(n, k) for n, k in zip(batch.row_numbers, batch.row_keys, strict=True) if n in statuses]
        if not rows:
            continue
        table = build_results_table(Mapping.identity(), row_key=[k for _, k in rows], row_number=[n for n, _ in rows],
                                    status=[statuses[n] for n, _ in rows], attempts=1,
                                    error_code=["http.500" if statuses[n] == "failed" else None for n, _ in rows])
        audit.write(spec.run_id, part_name(batch), table.select(["row_key"]))
        if batch.index not in audit_only:
            results.write(spec.run_id, part_name(batch), table)


def test_the_manifest_records_the_spec_and_no_secret_and_keeps_its_first_start(env: Path, tmp_path: Path) -> None:
    spec = spec_for(write_input(tmp_path / "in.csv", ["a", "b"]), env, "run-a")
    path = write_manifest(spec)
    first = json.loads(path.read_text())
    write_manifest(spec)
    again = read_manifest(env, "run-a")

    assert path == env / "_runs" / "run-a.json"
    assert first["input_path"] == str(tmp_path / "in.csv") and first["batch_size"] == 3 and first["attempt"] == 0
    assert again is not None and again["created_at"] == first["created_at"]
    text = path.read_text()
    assert SECRET not in text and AUDIT_KEY not in text and "secret" not in text.lower()
    assert [p.name for p in path.parent.iterdir()] == ["run-a.json"], "no temporary file is left"


def test_begin_run_sweeps_what_a_killed_writer_left(env: Path, tmp_path: Path) -> None:
    spec = spec_for(write_input(tmp_path / "in.csv", ["a", "b"]), env, "run-a")
    for dataset in ("results", "audit"):
        directory = env / dataset / "run_id=run-a"
        directory.mkdir(parents=True)
        (directory / ".part-000000-abc.0123.tmp").write_bytes(b"PAR1 half")
    assert begin_run(spec) == 2
    assert not list(env.glob("*/run_id=run-a/.*"))


def test_latest_outcomes_lay_retries_over_the_first_run(env: Path, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", [f"k{n}" for n in range(1, 8)])
    first = spec_for(source, env, "run-a")
    commit(first, {1: "succeeded", 2: "failed", 3: "failed", 4: "rejected", 5: "failed", 6: "succeeded"})
    write_manifest(first)
    retry1 = spec_for(source, env, "run-a-retry-1", retry_of="run-a")
    write_manifest(retry1)
    assert [b.row_numbers for b in batches_for(retry1)] == [[2, 3, 5]]
    commit(retry1, {2: "succeeded", 3: "failed", 5: "failed"})
    retry2 = spec_for(source, env, "run-a-retry-2", retry_of="run-a")
    write_manifest(retry2)
    commit(retry2, {3: "succeeded"})

    assert retry_chain(env, "run-a") == retry_chain(env, "run-a-retry-2") == ["run-a", "run-a-retry-1",
                                                                               "run-a-retry-2"]
    latest = latest_outcomes(env, "run-a").to_pylist()
    assert [(r["row_number"], r["status"], r["run_id"]) for r in latest] == [
        (1, "succeeded", "run-a"), (2, "succeeded", "run-a-retry-1"), (3, "succeeded", "run-a-retry-2"),
        (4, "rejected", "run-a"), (5, "failed", "run-a-retry-1"), (6, "succeeded", "run-a")]
    assert failed_rows(env, retry_chain(env, "run-a")) == {5: "k5"}
    assert [b.row_numbers for b in batches_for(retry2)] == [[3, 5]], "a resumed retry picks the same rows"


def test_a_retry_refuses_an_input_whose_rows_changed(env: Path, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", ["a", "b", "c"])
    first = spec_for(source, env, "run-a")
    commit(first, {1: "succeeded", 2: "failed", 3: "succeeded"})
    write_manifest(first)
    write_input(source, ["a", "x", "c"])
    retry = spec_for(source, env, "run-a-retry-1", retry_of="run-a")

    with pytest.raises(ConfigurationError, match="changed since run 'run-a': row 2 is keyed 'x' now, 'b' then"):
        list(batches_for(retry))


def test_plan_run_resumes_with_the_recorded_batch_size_and_refuses_a_reshaped_rerun(env: Path,
                                                                                     tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", ["a", "b", "c"])
    spec = plan_run(input_path=str(source), action_id="custom_-_a", run_id="run-a", batch_size=2, key_column="ref")
    write_manifest(spec)

    assert plan_run(input_path=str(source), action_id="custom_-_a", run_id="run-a", key_column="ref").batch_size == 2
    with pytest.raises(ConfigurationError, match=r"batch_size 2 \(now 5\)"):
        plan_run(input_path=str(source), action_id="custom_-_a", run_id="run-a", key_column="ref", batch_size=5)
    with pytest.raises(ConfigurationError, match="key_column 'ref' \\(now None\\)"):
        plan_run(input_path=str(source), action_id="custom_-_a", run_id="run-a")
    with pytest.raises(ConfigurationError, match="an input file is required"):
        plan_run(action_id="custom_-_a", run_id="run-b")


def test_plan_retry_names_the_next_retry_and_takes_the_first_run_as_it_was(env: Path, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", ["a", "b", "c"])
    first = plan_run(input_path=str(source), action_id="custom_-_a", run_id="run-a", key_column="ref", batch_size=2)
    write_manifest(first)

    retry = plan_run(retry_failed_of="run-a")
    assert (retry.run_id, retry.retry_of, retry.input_path, retry.key_column, retry.batch_size) == (
        "run-a-retry-1", "run-a", first.input_path, "ref", 2)
    write_manifest(retry)
    assert plan_run(retry_failed_of="run-a-retry-1").run_id == "run-a-retry-2"
    assert read_manifest(env, "run-a-retry-1")["attempt"] == 1  # type: ignore[index]
    with pytest.raises(ConfigurationError, match="action_id is 'custom_-_a' there"):
        plan_run(retry_failed_of="run-a", action_id="custom_-_other")
    with pytest.raises(ConfigurationError, match="left no manifest"):
        plan_run(retry_failed_of="run-never")


def test_show_run_lists_committed_in_doubt_and_pending_batches_and_failed_rows(env: Path, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", [f"k{n}" for n in range(1, 11)])
    spec = spec_for(source, env, "run-a")
    write_manifest(spec)
    commit(spec, {1: "succeeded", 2: "failed", 3: "rejected", 4: "succeeded", 5: "succeeded", 6: "succeeded",
                  7: "succeeded"}, audit_only={2})
    (env / "results" / "run_id=run-a" / ".part-000003-x.y.tmp").write_bytes(b"half")

    status = show_run(env, "run-a")
    assert [(b.index, b.rows, b.succeeded, b.failed, b.rejected) for b in status.committed] == [
        (0, 3, 1, 1, 1), (1, 3, 3, 0, 0)]
    assert status.failed_total == 1 and status.failed_rows[0]["row_key"] == "k2"
    assert status.in_doubt == [part_name(b) for b in batches_for(spec) if b.index == 2]
    assert [(p.index, p.first_row, p.rows) for p in status.pending or []] == [(2, 7, 3), (3, 10, 1)]
    assert status.temporaries == 1 and status.complete is False
    text = status.render()
    assert "committed: 2 batches, 6 rows (4 succeeded, 1 failed, 1 rejected)" in text
    assert "pending: 2 batches, 4 rows" in text and "row 2 (key k2): http.500" in text
    assert "--retry-failed run-a" in text
    json.dumps(status.as_dict(), default=str)


def test_show_run_without_a_manifest_needs_the_input_to_tell_what_is_pending(env: Path, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.csv", ["a", "b", "c", "d"])
    spec = spec_for(source, env, "run-a", batch_size=2)
    commit(spec, {1: "succeeded", 2: "succeeded"})

    assert show_run(env, "run-a").pending is None
    status = show_run(env, "run-a", input_path=str(source), batch_size=2, key_column="ref")
    assert [(p.index, p.first_row) for p in status.pending or []] == [(1, 3)]
    assert show_run(env, "run-a", input_path=str(source), batch_size=3, key_column="ref").notes
    with pytest.raises(ConfigurationError, match="no run 'run-b'"):
        show_run(env, "run-b")


def test_retry_batches_keep_row_numbers_and_keys_and_fill_whole_batches(env: Path, tmp_path: Path) -> None:
    keys = [f"k{n}" for n in range(1, 21)]
    source = write_input(tmp_path / "in.csv", keys)
    first = spec_for(source, env, "run-a", batch_size=4)
    failed = {n: "failed" for n in (2, 5, 6, 11, 19, 20)}
    commit(first, {n: failed.get(n, "succeeded") for n in range(1, 21)})
    write_manifest(first)
    retry = spec_for(source, env, "run-a-retry-1", batch_size=4, retry_of="run-a")

    batches = list(batches_for(retry))
    assert [b.row_numbers for b in batches] == [[2, 5, 6, 11], [19, 20]]
    assert [b.row_keys for b in batches] == [["k2", "k5", "k6", "k11"], ["k19", "k20"]]
    original = {n: row for b in iter_batches(source, 4, key_column="ref")
                for n, row in zip(b.row_numbers, b.rows, strict=True)}
    assert all(row == original[n] for b in batches for n, row in zip(b.row_numbers, b.rows, strict=True))
