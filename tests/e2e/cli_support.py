"""`dataactions` as a subprocess: its environment, its start, its end, and what it left in an output directory.

A run talks to an emulator over loopback and to the session's Prefect API (the test harness, whose URL the
parent passes down), so no process of its own but the CLI is started; it runs in its own session and is always
stopped by its process-group id. Waits poll a condition against a deadline. The tests that need a real Prefect
server (deployments, Dask workers) start one with `prefect_server_at`.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataactions.emulator import EmulatorServer, Scenario
from dataactions.emulator.scenario import Credential
from scripts.local_stack import api_url, free_port, start_server, wait_for_health

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "data" / "mappings" / "customer_by_phone.yaml"
CUSTOMER_ACTION = "custom_-_customer-by-phone"


def harness_api_url() -> str:
    """The session's Prefect API (needs the `prefect_api` fixture)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the prefect_api fixture is not active"
    return str(url)


def cli_env(*, emulator_url: str, client_id: str, client_secret: str, audit_key: str, prefect_home: Path,
            **extra: str) -> dict[str, str]:
    """The environment of a CLI run: this one's, without any GENESYS_/DATAACTIONS_/PREFECT_ setting, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "DATAACTIONS_", "PREFECT_"))}
    env.update({
        "GENESYS_API_BASE_URL": emulator_url, "GENESYS_CLIENT_ID": client_id, "GENESYS_CLIENT_SECRET": client_secret,
        "DATAACTIONS_AUDIT_KEY": audit_key, "PREFECT_HOME": str(prefect_home), "PREFECT_API_URL": harness_api_url(),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1", "COLUMNS": "200",
    })
    env.update(extra)
    return env


@dataclass
class CliRun:
    """One `dataactions ...` process; its stdout and stderr go to files beside each other."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @classmethod
    def start(cls, args: list[str], env: Mapping[str, str], logs: Path, cwd: Path) -> CliRun:
        logs.mkdir(parents=True, exist_ok=True)
        count = len(list(logs.glob("*.stdout")))
        stdout, stderr = logs / f"{count:02d}.stdout", logs / f"{count:02d}.stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen([sys.executable, "-m", "dataactions.cli", *args], env=dict(env), cwd=cwd,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        return cls(process, stdout, stderr)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the run's process group (the CLI and anything it started), then reap it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def wait(self, timeout: float = 180.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            tail = self.stderr()[-3000:]
            raise AssertionError(f"the CLI did not end within {timeout:g} s; stderr:\n{tail}") from None

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


class Runner:
    """Starts CLI runs with one environment and stops every one still alive at the end."""

    def __init__(self, env: Mapping[str, str], logs: Path, cwd: Path) -> None:
        self.env, self.logs, self.cwd = dict(env), logs, cwd
        self.runs: list[CliRun] = []

    def start(self, *args: str, **env: str) -> CliRun:
        run = CliRun.start(list(args), self.env | env, self.logs, self.cwd)
        self.runs.append(run)
        return run

    def run(self, *args: str, timeout: float = 180.0, **env: str) -> tuple[int, CliRun]:
        run = self.start(*args, **env)
        return run.wait(timeout), run

    def stop_all(self) -> None:
        for run in self.runs:
            run.kill()


@contextmanager
def cli_runner(env: Mapping[str, str], logs: Path, cwd: Path) -> Iterator[Runner]:
    runner = Runner(env, logs, cwd)
    try:
        yield runner
    finally:
        runner.stop_all()


def poll(condition: Callable[[], object], timeout: float, what: str, *, interval: float = 0.005,
         while_alive: CliRun | None = None) -> bool:
    """Poll `condition` until it holds (True) or `while_alive` has exited (False); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if while_alive is not None and not while_alive.alive():
            return bool(condition())
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        if interval:
            time.sleep(interval)


def phone(n: int) -> str:
    return f"+1555{n:07d}"


def write_customers(path: Path, rows: int, *, first: int = 1) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_ref", "phoneNumber", "segment"])
        writer.writerows([f"C{n:05d}", phone(n), "retail"] for n in range(first, first + rows))
    return path


def run_dir(output: Path, dataset: str, run_id: str) -> Path:
    return output / dataset / f"run_id={run_id}"


def parts(output: Path, dataset: str, run_id: str) -> set[str]:
    directory = run_dir(output, dataset, run_id)
    return {p.name for p in directory.glob("*.parquet") if not p.name.startswith(".")} if directory.is_dir() else set()


def temporaries(output: Path, run_id: str) -> set[str]:
    """Temporary files in the run's results and audit directories (a writer killed mid-write leaves one)."""
    found: set[str] = set()
    for dataset in ("results", "audit"):
        directory = run_dir(output, dataset, run_id)
        try:
            found.update(f"{dataset}/{entry.name}" for entry in os.scandir(directory) if entry.name.startswith("."))
        except FileNotFoundError:
            pass
    return found


def read_parts(output: Path, dataset: str, run_id: str) -> dict[str, pa.Table]:
    """Every committed part of a run, each read on its own (a half-written part fails here)."""
    return {name: pq.read_table(run_dir(output, dataset, run_id) / name) for name in sorted(parts(output, dataset,
                                                                                                  run_id))}


@contextmanager
def emulator_with_client(client_id: str, client_secret: str) -> Iterator[EmulatorServer]:
    """The default catalog, no rate limit, and only the given OAuth client: the secret the test scans for."""
    scenario = Scenario.default().model_copy(update={
        "rate_limit": None, "credentials": [Credential(client_id=client_id, client_secret=client_secret)]})
    with EmulatorServer(scenario) as server:
        yield server


@contextmanager
def prefect_server_at(home: Path, *, timeout: float = 180.0) -> Iterator[str]:
    """A real `prefect server start` on a free loopback port, its database under `home` (a fresh one migrates in
    ~20 s); yields its API URL and stops it on exit."""
    port = free_port()
    server = start_server(home, port, ui=False, log=home / "server.log")
    try:
        wait_for_health(api_url(port), server, timeout=timeout)
        yield api_url(port)
    finally:
        server.stop()
