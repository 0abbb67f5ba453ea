"""JobSpec's share of the limits, its batches per task run, and the runtimes tasks open: shared in the flow's loop,
their own elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataactions.auth import PROCESS_TOKENS
from dataactions.emulator import EmulatorServer
from dataactions.errors import ConfigurationError
from dataactions.job import UNLIMITED_BATCHES_PER_TASK, JobSpec, plan_job
from dataactions.runtime import Runtime, close_runtime, runtime_for, runtime_scope
from tests.dataactions.conftest import CLIENT_ID, CLIENT_SECRET, CUSTOMER_ACTION


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    source = tmp_path / "in.csv"
    source.write_text("phoneNumber\n+15550000001\n")
    return JobSpec(input_path=str(source), output_dir=str(tmp_path / "out"), run_id="job-tests",
                   action_id=CUSTOMER_ACTION, concurrency=16, rate_per_minute=290)


def test_a_share_splits_rate_and_concurrency_between_the_tasks_in_flight(spec: JobSpec) -> None:
    share = spec.share(4)
    assert (share.rate_per_minute, share.concurrency) == (72.5, 4)
    assert share.results_identity("m") == spec.results_identity("m")  # same outputs, same cache keys
    assert spec.share(3).concurrency * 3 <= spec.concurrency


def test_no_share_below_one_request_in_flight(spec: JobSpec) -> None:
    with pytest.raises(ConfigurationError, match="at most 16"):
        spec.share(17)


@pytest.fixture
def genesys_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    for name, value in {"GENESYS_API_BASE_URL": emulator.base_url, "GENESYS_CLIENT_ID": CLIENT_ID,
                        "GENESYS_CLIENT_SECRET": CLIENT_SECRET,
                        "DATAACTIONS_AUDIT_KEY": "job-tests-audit-key-0123456789"}.items():
        monkeypatch.setenv(name, value)
    for name in ("GENESYS_REGION", "GENESYS_EXTRA_CLIENTS"):
        monkeypatch.delenv(name, raising=False)
    PROCESS_TOKENS.clear()
    yield emulator
    PROCESS_TOKENS.clear()


def test_a_task_on_a_fresh_loop_opens_its_own_runtime_closes_it_and_keeps_the_token(
        genesys_env: EmulatorServer, spec: JobSpec) -> None:
    async def task() -> Runtime:  # as a Dask worker runs one: asyncio.run per task
        async with runtime_scope(spec) as runtime:
            await runtime.client.check_login()
            return runtime

    first, second = asyncio.run(task()), asyncio.run(task())
    assert first is not second
    assert first.client._http.is_closed and second.client._http.is_closed
    assert genesys_env.stats()["tokens_issued"] == 1


def test_in_the_flows_loop_a_task_uses_the_shared_runtime_and_leaves_it_open(
        genesys_env: EmulatorServer, spec: JobSpec) -> None:
    async def flow() -> None:
        shared = runtime_for(spec)
        async with runtime_scope(spec) as runtime:
            assert runtime is shared
        assert not shared.client._http.is_closed
        await close_runtime(spec)

    asyncio.run(flow())


@pytest.mark.parametrize(("rate", "ceiling", "setting", "expected"), [
    (290, None, None, 1),  # a rate-limited batch lasts long enough to be a task run of its own
    (0, None, None, UNLIMITED_BATCHES_PER_TASK),  # an unlimited one does not: Prefect's cost per task shows
    (0, 5, None, 1),  # the failure ceiling is checked as task runs end: after every batch
    (0, None, "3", 3),
    (290, 5, "2", 2),
])
def test_batches_per_task_follow_the_rate_limit_and_the_failure_ceiling_unless_set(
        genesys_env: EmulatorServer, spec: JobSpec, monkeypatch: pytest.MonkeyPatch,
        rate: float, ceiling: float | None, setting: str | None, expected: int) -> None:
    if setting is None:
        monkeypatch.delenv("DATAACTIONS_BATCHES_PER_TASK", raising=False)
    else:
        monkeypatch.setenv("DATAACTIONS_BATCHES_PER_TASK", setting)
    planned = plan_job(input_path=spec.input_path, rate_per_minute=rate, action_id=CUSTOMER_ACTION,
                       max_failed_rows=ceiling)
    assert planned.batches_per_task == expected


def test_a_bad_batches_per_task_setting_fails_at_planning(genesys_env: EmulatorServer, spec: JobSpec,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAACTIONS_BATCHES_PER_TASK", "0")
    with pytest.raises(ConfigurationError, match="DATAACTIONS_BATCHES_PER_TASK: Input should be greater than or equal to 1"):
        plan_job(input_path=spec.input_path, action_id=CUSTOMER_ACTION)
