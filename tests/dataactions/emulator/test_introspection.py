"""/__emulator__/: stats, reset, configure, and the runners' helpers."""

from __future__ import annotations

import httpx
import pytest

from dataactions.emulator import EmulatorServer
from tests.dataactions.emulator.support import CUSTOMER, PHONE

EXECUTE = f"/api/v2/integrations/actions/{CUSTOMER}/execute"

STATS_KEYS = {
    "executions",
    "execution_span",
    "by_input",
    "tests",
    "responses",
    "token_responses",
    "requests",
    "rate_limited",
    "concurrency_limited",
    "requests_before_retry_after",
    "dropped_connections",
    "tokens_issued",
    "workflow_launches",
    "workflow_polls",
    "in_flight",
    "max_in_flight",
    "faults_fired",
    "by_client",
    "peak_in_window",
    "rate_window_seconds",
}


def test_stats_has_every_documented_key(emu: EmulatorServer) -> None:
    assert set(emu.stats()) == STATS_KEYS


def test_stats_count_api_and_token_responses_apart_and_not_introspection(
    api: httpx.Client, emu: EmulatorServer
) -> None:
    api.post(EXECUTE, json={"phoneNumber": PHONE})
    api.post(EXECUTE, json={"phoneNumber": "nope"})
    api.post("/oauth/token", auth=("demo-client", "wrong"), data={"grant_type": "client_credentials"})
    emu.stats()
    stats = emu.stats()
    assert stats["responses"] == {"200": 1, "400": 1} and stats["requests"] == 2
    assert stats["token_responses"] == {"200": 1, "401": 1}
    assert stats["max_in_flight"] == 1 and stats["in_flight"] == 0


def test_the_execution_span_runs_from_the_first_to_the_last_execute(api: httpx.Client, emu: EmulatorServer) -> None:
    assert emu.stats()["execution_span"] == []
    api.post(EXECUTE, json={"phoneNumber": PHONE})
    first = emu.stats()["execution_span"]
    api.post(EXECUTE, json={"phoneNumber": PHONE})
    second = emu.stats()["execution_span"]
    assert first[0] == first[1] == second[0] < second[1]
    emu.reset()
    assert emu.stats()["execution_span"] == []


def test_stats_can_leave_out_the_per_input_counts(api: httpx.Client, emu: EmulatorServer) -> None:
    api.post(EXECUTE, json={"phoneNumber": PHONE})
    assert emu.stats(include_inputs=False)["by_input"] == {}
    assert emu.input_count(CUSTOMER, {"phoneNumber": PHONE}) == 1


def test_reset_zeroes_the_counters(api: httpx.Client, emu: EmulatorServer) -> None:
    api.post(EXECUTE, json={"phoneNumber": PHONE})
    emu.reset()
    stats = emu.stats()
    assert (stats["executions"], stats["by_input"], stats["responses"], stats["tokens_issued"]) == ({}, {}, {}, 0)
    assert api.post(EXECUTE, json={"phoneNumber": PHONE}).status_code == 200


def test_configure_answers_the_effective_scenario(emu: EmulatorServer) -> None:
    scenario = emu.configure(latency={"distribution": "uniform", "min_ms": 1, "max_ms": 2}, concurrent_executions_max=7)
    assert scenario["latency"]["distribution"] == "uniform" and scenario["concurrent_executions_max"] == 7


def test_an_invalid_configuration_is_refused_and_changes_nothing(emu: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        emu.configure(rate_limit={"requests": -1, "per_seconds": 60})
    with pytest.raises(ValueError, match="no_such_field"):
        emu.configure(no_such_field=1)
    assert emu.configure()["rate_limit"] is None
