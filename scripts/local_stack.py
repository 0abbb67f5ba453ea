"""A local Prefect stack for scheduled and on-demand runs: `make ui` runs `main()`; tests/e2e uses the pieces.

    prefect server (127.0.0.1:PORT) ─▶ work pool `dataactions-pool` (process) ─▶ `prefect deploy --all` (prefect.yaml)
    Genesys emulator (loopback)    ─▶ process worker whose environment holds the credentials and the emulator URL

Every process is started in its own session and stopped by its process group id, on Ctrl-C and on failure.
Waits poll a condition against a deadline; none sleeps in the hope that something got ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

__all__ = [
    "POOL",
    "REPO",
    "Service",
    "api_url",
    "deploy_all",
    "ensure_work_pool",
    "free_port",
    "prefect_env",
    "start_server",
    "start_worker",
    "wait_for_health",
    "wait_until",
    "worker_env",
]

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "prefect.yaml"
POOL = "dataactions-pool"
DEMO_SCENARIO = REPO / "data" / "emulator" / "demo.yaml"
DEMO_AUDIT_KEY = "demo-audit-key-not-for-production"
HOST = "127.0.0.1"


def _prefect_cli() -> list[str]:
    """The Prefect CLI of this interpreter's environment (the venv's `prefect`, else `python -m prefect`)."""
    script = Path(sys.executable).with_name("prefect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def api_url(port: int, host: str = HOST) -> str:
    return f"http://{host}:{port}/api"


def prefect_env(home: Path, api: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment with Prefect pointed at `home` (its DB and profiles) and at `api`."""
    env = dict(os.environ)
    env.pop("PREFECT_PROFILE", None)
    env.update({"PREFECT_HOME": str(home), "PREFECT_CLI_PROMPT": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
    if api is not None:
        env["PREFECT_API_URL"] = api
    else:
        env.pop("PREFECT_API_URL", None)
    env.update(extra)
    return env


def worker_env(base: Mapping[str, str], *, emulator_url: str, client_id: str, client_secret: str,
               audit_key: str) -> dict[str, str]:
    """What a worker needs to run `bulk_enrich` on the emulator: credentials live here, never in the deployment.

    `DATAACTIONS_HOME` is where the deployment's pull step (prefect.yaml) finds the code; flow runs inherit it all.
    """
    env = dict(base)
    for name in ("GENESYS_REGION", "GENESYS_LOGIN_BASE_URL"):
        env.pop(name, None)
    env.update({"GENESYS_API_BASE_URL": emulator_url, "GENESYS_CLIENT_ID": client_id,
                "GENESYS_CLIENT_SECRET": client_secret, "DATAACTIONS_AUDIT_KEY": audit_key,
                "DATAACTIONS_HOME": str(REPO), "DATAACTIONS_RATE_PER_MINUTE": "0"})
    return env


@dataclass
class Service:
    """A child process in its own session, its output in a log file; `stop()` ends its whole process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, command: list[str], env: Mapping[str, str], log: Path,
              cwd: Path = REPO, stream: IO[bytes] | None = None) -> Service:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                       stdout=stream or sink, stderr=subprocess.STDOUT, start_new_session=True)
        return cls(name, process, log)

    def alive(self) -> bool:
        """Whether the leader still runs. Never reaps it: while it is unreaped, its pid and group id stay ours."""
        return self.exit_status() is None

    def exit_status(self) -> int | None:
        """The leader's exit status once it has exited (None while it runs); peeks without reaping."""
        if self.process.returncode is not None:
            return self.process.returncode
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.process.poll()
        return None if info is None else info.si_status

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group; SIGKILL to the group after `timeout` s, and to anything left of it once
        the leader has exited (before it is reaped, so the group id cannot have been reused); then reap."""
        if self.process.returncode is not None:
            return
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                wait_until(lambda: not self.alive(), timeout, f"{self.name} to stop", interval=0.05)
            except TimeoutError:
                self._signal(signal.SIGKILL)
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=timeout)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_until(condition: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.25,
               watch: Service | None = None) -> None:
    """Poll `condition` until it holds; fail at the deadline, or as soon as the watched process has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if watch is not None and not watch.alive():
            raise RuntimeError(f"{watch.name} exited with status {watch.exit_status()} while waiting for "
                               f"{what}; last lines of {watch.log}:\n{watch.tail()}")
        if time.monotonic() > deadline:
            detail = f"; last lines of {watch.log}:\n{watch.tail()}" if watch is not None else ""
            raise TimeoutError(f"{what}: not within {timeout:g} s{detail}")
        time.sleep(interval)


def is_healthy(api: str) -> bool:
    try:
        response = httpx.get(f"{api}/health", timeout=5, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json() is True


def start_server(home: Path, port: int, *, ui: bool = True, log: Path | None = None) -> Service:
    """`prefect server start` on loopback with its SQLite DB under `home` (a fresh DB migrates in ~20 s)."""
    env = prefect_env(home, PREFECT_SERVER_UI_ENABLED=str(ui).lower(),
                      PREFECT_SERVER_DATABASE_TIMEOUT="60", PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT="60")
    command = [*_prefect_cli(), "server", "start", "--host", HOST, "--port", str(port), "--analytics-off"]
    return Service.start("prefect server", command, env, log or home / "logs" / "server.log")


def wait_for_health(api: str, server: Service, timeout: float = 180.0) -> None:
    wait_until(lambda: is_healthy(api), timeout, f"Prefect API {api}/health", watch=server)


def ensure_work_pool(api: str, name: str = POOL) -> bool:
    """Create the process work pool `name` unless it exists; True when it was created."""
    return asyncio.run(_ensure_work_pool(api, name))


async def _ensure_work_pool(api: str, name: str) -> bool:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with PrefectClient(api) as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return True


def deploy_all(env: Mapping[str, str], prefect_file: Path = PREFECT_FILE, timeout: float = 180.0) -> str:
    """`prefect --no-prompt deploy --all --prefect-file FILE` from the repo root; its output, or RuntimeError."""
    command = [*_prefect_cli(), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)]
    done = subprocess.run(command, cwd=REPO, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed with status {done.returncode}:\n{output}")
    return output


def start_worker(env: Mapping[str, str], log: Path, *, pool: str = POOL, run_once: bool = False,
                 limit: int | None = None, stream: IO[bytes] | None = None) -> Service:
    """A process worker on `pool`; with `run_once`, it polls once, runs what it picked up, and exits."""
    command = [*_prefect_cli(), "worker", "start", "--pool", pool, "--type", "process", "--install-policy", "never"]
    if run_once:
        command.append("--run-once")
    if limit is not None:
        command += ["--limit", str(limit)]
    return Service.start("prefect worker", command, env, log, stream=stream)


# ---------------------------------------------------------------------------------------------- make ui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prefect server + deployments + emulator + worker, on loopback.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DATAACTIONS_UI_PORT", "4200")),
                        help="Prefect server port (default: 4200, or DATAACTIONS_UI_PORT)")
    args = parser.parse_args(argv)
    if not port_is_free(HOST, args.port):
        print(f"port {args.port} on {HOST} is taken (another Prefect server?); use make ui UI_PORT=NNNN",
              file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(sig, _interrupt)
    home = Path(os.environ.get("PREFECT_HOME", REPO / ".prefect")).resolve()
    try:
        with _local_stack(home, args.port) as services:
            _supervise(services)
    except KeyboardInterrupt:
        print("\nstopped: worker, emulator and Prefect server are down")
        return 0
    return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _local_stack(home: Path, port: int) -> Iterator[list[Service]]:
    from dataactions.emulator import EmulatorProcess, load_scenario

    api = api_url(port)
    logs = home / "logs"
    with ExitStack() as stack:
        print(f"starting the Prefect server on {HOST}:{port} (PREFECT_HOME={home}; a new DB migrates in ~20 s)")
        server = start_server(home, port, log=logs / "server.log")
        stack.callback(server.stop)
        wait_for_health(api, server)
        if ensure_work_pool(api):
            print(f"created the process work pool {POOL!r}")
        print("deploying prefect.yaml: nightly-enrich, enrich-on-demand")
        deploy_all(prefect_env(home, api))
        scenario = load_scenario(DEMO_SCENARIO)
        emulator = stack.enter_context(EmulatorProcess(DEMO_SCENARIO))
        credentials = scenario.credentials[0]
        env = worker_env(prefect_env(home, api), emulator_url=emulator.base_url, client_id=credentials.client_id,
                         client_secret=credentials.client_secret,
                         audit_key=os.environ.get("DATAACTIONS_AUDIT_KEY", DEMO_AUDIT_KEY))
        worker = start_worker(env | {"DATAACTIONS_CONCURRENCY": "32"}, logs / "worker.log",
                              stream=sys.stdout.buffer)
        stack.callback(worker.stop)
        _print_banner(port, emulator.base_url, logs)
        yield [server, worker]


def _print_banner(port: int, emulator_url: str, logs: Path) -> None:
    ui = f"http://{HOST}:{port}"
    print(f"""
Prefect UI:   {ui}
  Deployments: {ui}/deployments  (bulk-enrich / nightly-enrich, bulk-enrich / enrich-on-demand)
  Run one:     open enrich-on-demand, then Run ▸ Custom run to change its parameters,
               or: PREFECT_API_URL={ui}/api .venv/bin/prefect deployment run bulk-enrich/enrich-on-demand
Emulator:     {emulator_url} (the worker's GENESYS_API_BASE_URL)
Server log:   {logs / 'server.log'}
Ctrl-C stops the worker, the emulator and the server.
""", flush=True)


def _supervise(services: list[Service]) -> None:
    """Block until Ctrl-C, or until a service dies (then say which, and stop the rest)."""
    while True:
        for service in services:
            if not service.alive():
                print(f"{service.name} exited with status {service.exit_status()}; last lines of "
                      f"{service.log}:\n{service.tail()}", file=sys.stderr)
                return
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
