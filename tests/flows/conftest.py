"""Flow tests: the emulator over loopback, a real Prefect API, real Parquet in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dataactions.emulator import EmulatorServer, Scenario

CUSTOMER_ACTION = "custom_-_customer-by-phone"
AUDIT_KEY = "flow-tests-audit-key-0123456789"


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    scenario = Scenario.default().model_copy(update={"rate_limit": None})
    with EmulatorServer(scenario) as server:
        yield server


@pytest.fixture
def genesys_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """Point the settings at the emulator, and give the emulator a clean slate for this test."""
    emulator.reset()
    emulator.configure(rate_limit=None, faults=[], latency=0, token_lifetime_seconds=86400)
    for name, value in {"GENESYS_API_BASE_URL": emulator.base_url, "GENESYS_CLIENT_ID": "demo-client",
                        "GENESYS_CLIENT_SECRET": "demo-secret", "DATAACTIONS_AUDIT_KEY": AUDIT_KEY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GENESYS_REGION", raising=False)
    return emulator


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"
