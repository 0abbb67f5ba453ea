"""The emulator as a child process (benchmarks, demo) and as `python -m dataactions.emulator`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dataactions.emulator import EmulatorProcess
from dataactions.emulator.generators import customer_by_phone
from tests.dataactions.emulator.support import CUSTOMER, PHONE, bearer, fetch_token, quiet_scenario

pytestmark = pytest.mark.slow


def test_an_emulator_process_serves_a_scenario_object_and_stops() -> None:
    with EmulatorProcess(quiet_scenario(), port=0) as emulator:
        with httpx.Client(base_url=emulator.base_url, trust_env=False, verify=False, timeout=10) as client:
            answer = client.post(
                f"/api/v2/integrations/actions/{CUSTOMER}/execute",
                headers=bearer(fetch_token(client)),
                json={"phoneNumber": PHONE},
            )
        assert answer.json() == customer_by_phone({"phoneNumber": PHONE})
        assert emulator.stats()["executions"] == {CUSTOMER: 1}
        process = emulator.process
        assert process is not None
    assert process.poll() is not None


def test_the_module_refuses_an_invalid_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rate_limit: {requests: 0, per_seconds: 60}\n", encoding="utf-8")
    finished = subprocess.run(
        [sys.executable, "-m", "dataactions.emulator", "--port", "0", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2 and "rate_limit.requests" in finished.stderr
