"""Where batch tasks run: the choices `batch_runner` refuses before it touches a cluster (tests/e2e/test_dask.py runs
the dask runner for real, on a two-process cluster against a Prefect server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from dataactions.errors import ConfigurationError
from dataactions.job import JobSpec
from flows.runners import batch_runner


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    source = tmp_path / "in.csv"
    source.write_text("phoneNumber\n+15550000001\n")
    return JobSpec(input_path=str(source), output_dir=str(tmp_path / "out"), run_id="runners", action_id="a")


def enter(runner: Any, spec: JobSpec, window: int = 2) -> Any:
    async def go() -> Any:
        async with batch_runner(runner, spec, window) as where:
            return where

    return asyncio.run(go())


def test_the_local_runner_hands_every_task_the_whole_spec(spec: JobSpec) -> None:
    where = enter("local", spec, window=3)
    assert (where.spec, where.window) == (spec, 3)


def test_the_dask_runner_refuses_the_ephemeral_api_whose_workers_would_each_start_a_server(spec: JobSpec) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}), \
            pytest.raises(ConfigurationError, match="prefect server start.*PREFECT_API_URL"):
        enter("dask", spec)


def test_an_unknown_runner_is_a_configuration_error(spec: JobSpec) -> None:
    with pytest.raises(ConfigurationError, match="local or dask"):
        enter("ray", spec)
