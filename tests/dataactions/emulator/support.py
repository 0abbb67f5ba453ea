"""Constants and helpers shared by the emulator tests."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dataactions.emulator import Scenario

CUSTOMER = "custom_-_customer-by-phone"
ORDER = "custom_-_order-status"
SECURE = "custom_-_verify-identity"
ECHO = "custom_-_echo"
WORKFLOW = "wf-enrich-customer"
CLIENT = ("demo-client", "demo-secret")
PHONE = "+15551234567"

_ECHO_ACTION = {
    "id": ECHO,
    "name": "Echo",
    "category": "Testing",
    "timeout_seconds": 0.3,
    "output": "echo",
    "input_schema": {
        "type": "object",
        "properties": {"value": {"type": ["string", "integer", "number", "boolean", "null"]}},
    },
    "success_schema": {"type": "object"},
}


def quiet_scenario(**overrides: Any) -> Scenario:
    """The default catalog plus an echo action (timeoutSeconds 0.3), no limits, no latency, no faults."""
    data = Scenario.default().model_dump(mode="json")
    data.update(rate_limit=None, concurrent_executions_max=None, latency=0, faults=[])
    data["actions"].append(_ECHO_ACTION)
    data.update(overrides)
    return Scenario.model_validate(data)


@functools.cache
def baseline() -> dict[str, Any]:
    """The quiet scenario as a `configure` patch that restores every field."""
    return quiet_scenario().model_dump(mode="json")


def eventually(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return result


def fetch_token(client: httpx.Client) -> str:
    response = client.post("/oauth/token", auth=CLIENT, data={"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
