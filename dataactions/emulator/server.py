"""Running the emulator: `serve` (blocking), `EmulatorServer` (a thread), `EmulatorProcess` (a child process).

Both runners bind their socket before the server starts, so `port=0` picks a free port, and both
expose the introspection endpoints as methods (`stats`, `reset`, `configure`, `revoke_tokens`).
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette

from dataactions.emulator.app import create_app
from dataactions.emulator.canonical import input_digest
from dataactions.emulator.scenario import DEFAULT_SCENARIO_PATH, Scenario
from dataactions.emulator.state import EmulatorState

__all__ = ["EmulatorProcess", "EmulatorServer", "serve"]

_LISTENING = re.compile(r"listening on (http://\S+)")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: Starlette) -> uvicorn.Config:
    """uvloop + httptools when installed, no access log, no lifespan, quick graceful shutdown."""
    return uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
        date_header=False,
        backlog=2048,
        timeout_graceful_shutdown=2,
    )


def serve(scenario: Scenario, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve `scenario` until interrupted; print `listening on http://HOST:PORT` once accepting."""
    sock = _bind(host, port)
    print(f"listening on {_url(sock)}", flush=True)
    uvicorn.Server(_config(create_app(scenario))).run(sockets=[sock])


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:g} s")
        time.sleep(0.005)


class _Control:
    """Introspection over HTTP, shared by both runners."""

    _base_url: str | None = None
    _client: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the emulator is not running")
        return self._base_url

    def _admin(self, method: str, name: str, **kwargs: Any) -> Any:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=10, trust_env=False, verify=False)
        response = self._client.request(method, f"/__emulator__/{name}", **kwargs)
        if response.status_code == 400:
            raise ValueError(response.json().get("message", response.text))
        response.raise_for_status()
        return response.json()

    def stats(self, include_inputs: bool = True) -> dict[str, Any]:
        return self._admin("GET", "stats", params={"inputs": str(include_inputs).lower()})

    def reset(self) -> None:
        self._admin("POST", "reset")

    def configure(self, **overrides: Any) -> dict[str, Any]:
        """Replace top-level scenario fields at runtime; return the effective scenario (raises ValueError)."""
        return self._admin("POST", "configure", json=overrides)["scenario"]

    def revoke_tokens(self) -> int:
        return self._admin("POST", "revoke")["revoked"]

    def issued_tokens(self) -> list[str]:
        """Every access token issued (the last 10,000), revoked and expired ones included."""
        return [entry["access_token"] for entry in self._admin("GET", "tokens")["tokens"]]

    def input_count(self, action_id: str, inputs: dict[str, Any]) -> int:
        """How many executes of `action_id` carried exactly `inputs`."""
        return self.stats()["by_input"].get(action_id, {}).get(input_digest(inputs), 0)

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class EmulatorServer(_Control):
    """The emulator on a background thread of this process (for tests)."""

    def __init__(
        self, scenario: Scenario | None = None, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10
    ) -> None:
        self.scenario = scenario if scenario is not None else Scenario.default()
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self.app = create_app(self.scenario)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> EmulatorState:
        """The live state (owned by the server thread: read it, do not mutate it)."""
        return self.app.state.emulator

    def start(self) -> Self:
        sock = _bind(self.host, self.port)
        self._server = uvicorn.Server(_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True
        )
        self._thread.start()
        server, thread = self._server, self._thread
        try:
            _wait_until(lambda: server.started or not thread.is_alive(), self.startup_timeout, "emulator thread")
            if not server.started:
                raise RuntimeError("the emulator thread failed to start")
        except BaseException:
            self.stop()
            sock.close()
            raise
        self._base_url = _url(sock)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self._base_url = None
        self._close_client()


class EmulatorProcess(_Control):
    """The emulator in a child process (`python -m dataactions.emulator`), so it has its own GIL."""

    def __init__(
        self,
        scenario: str | Path | Scenario | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        startup_timeout: float = 30,
    ) -> None:
        self.scenario = scenario
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._temporary: Path | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def start(self) -> Self:
        command = [sys.executable, "-m", "dataactions.emulator", "--host", self.host, "--port", str(self.port)]
        command += ["--scenario", str(self._scenario_file())]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, env=_child_env())
        try:
            self._base_url = _read_listening_url(self._process, self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _scenario_file(self) -> Path:
        if self.scenario is None:
            return DEFAULT_SCENARIO_PATH
        if not isinstance(self.scenario, Scenario):
            return Path(self.scenario)
        handle, name = tempfile.mkstemp(prefix="emulator-scenario-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(self.scenario.model_dump_json())
        self._temporary = Path(name)
        return self._temporary

    def stop(self) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
            self._temporary = None
        self._base_url = None
        self._close_client()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def _read_listening_url(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Read the child's stdout until its `listening on URL` line, within `timeout` seconds."""
    assert process.stdout is not None
    deadline, seen = time.monotonic() + timeout, b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"emulator process did not report its port within {timeout:g} s")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"emulator process exited with status {process.wait()} before listening")
            seen += chunk
    match = _LISTENING.search(seen.decode("utf-8", "replace"))
    if match is None:
        raise RuntimeError(f"unexpected first line from the emulator process: {seen!r}")
    return match.group(1)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
