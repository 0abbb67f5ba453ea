"""Metrics: instruments read back through the SDK's in-memory reader; the exporters over their real wire."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from dataactions.client import GenesysClient
from dataactions.emulator import EmulatorServer
from dataactions.errors import ConfigurationError, ServiceUnavailableError
from dataactions.settings import Settings
from dataactions.telemetry import Metrics, configure_metrics, shutdown_metrics
from tests.dataactions.conftest import CUSTOMER_ACTION, collected, in_memory_metrics, phone, points

ACTION, OUTCOME = "dataactions.action.id", "dataactions.outcome"


@pytest.fixture(autouse=True)
def _no_exporter_left_behind() -> Iterator[None]:
    yield
    shutdown_metrics()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels without empty ones) → value, from the Prometheus text at 127.0.0.1:PORT."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {(sample.name, frozenset((k, v) for k, v in sample.labels.items() if v)): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_invocations_are_counted_and_timed_by_action_and_outcome() -> None:
    metrics, reader = in_memory_metrics()
    metrics.record_invocation("act-1", "succeeded", 0.2)
    metrics.record_invocation("act-1", "succeeded", 0.4)
    metrics.record_invocation("act-1", "failed", 1.5, "http.503")
    found = collected(reader)
    counts = points(found["dataactions.invocations"])
    assert found["dataactions.invocations"].unit == "{invocation}"
    assert counts[((ACTION, "act-1"), (OUTCOME, "succeeded"))].value == 2
    assert counts[((ACTION, "act-1"), (OUTCOME, "failed"), ("error.type", "http.503"))].value == 1
    duration = found["dataactions.invocation.duration"]
    assert duration.unit == "s"
    ok = points(duration)[((ACTION, "act-1"), (OUTCOME, "succeeded"))]
    assert ok.count == 2 and ok.sum == pytest.approx(0.6)
    assert 0.25 in ok.explicit_bounds and 60.0 in ok.explicit_bounds


def test_rows_retries_and_rate_limits() -> None:
    metrics, reader = in_memory_metrics()
    metrics.record_rows("act-1", "rejected", 3)
    metrics.record_rows("act-1", "succeeded", 0)
    metrics.record_retry("http.503")
    metrics.record_retry("http.503")
    metrics.record_retry("timeout")
    metrics.record_rate_limited()
    found = collected(reader)
    assert points(found["dataactions.rows"]) [((ACTION, "act-1"), (OUTCOME, "rejected"))].value == 3
    retries = points(found["dataactions.retries"])
    assert retries[(("error.type", "http.503"),)].value == 2
    assert retries[(("error.type", "timeout"),)].value == 1
    assert points(found["dataactions.rate_limited.responses"])[()].value == 1
    assert {found[name].unit for name in ("dataactions.rows", "dataactions.retries")} == {"{row}", "{retry}"}


@pytest.mark.anyio
async def test_every_http_attempt_is_one_semantic_convention_duration(
        emulator: EmulatorServer, make_settings: Any) -> None:
    metrics, reader = in_memory_metrics()
    emulator.configure(faults=[{"kind": "status", "status": 503, "times": 1, "match": {"phoneNumber": phone(1)}}])
    settings: Settings = make_settings()
    async with GenesysClient.from_settings(settings, metrics=metrics) as client:
        await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(2)})
        with pytest.raises(ServiceUnavailableError):
            await client.execute(CUSTOMER_ACTION, {"phoneNumber": phone(1)})
        await client.get_action(CUSTOMER_ACTION)
    found = points(collected(reader)["http.client.request.duration"])
    port = httpx.URL(emulator.base_url).port
    execute = {"http.request.method": "POST", "url.template": "/api/v2/integrations/actions/{actionId}/execute",
               "server.address": "127.0.0.1", "server.port": port}
    ok = found[tuple(sorted({**execute, "http.response.status_code": 200}.items()))]
    failed = found[tuple(sorted({**execute, "http.response.status_code": 503, "error.type": "503"}.items()))]
    assert ok.count == 1 and failed.count == 1
    assert any(dict(key)["url.template"] == "/api/v2/integrations/actions/{actionId}" for key in found)
    assert not any(CUSTOMER_ACTION in str(value) or phone(2) in str(value) for key in found for _, value in key)


def test_noop_metrics_accept_everything() -> None:
    metrics = Metrics.noop()
    metrics.record_invocation("a", "succeeded", 0.1)
    metrics.record_retry("transport")
    metrics.record_rate_limited()
    metrics.record_http_client("GET", "/x", "h", 443, 200, 0.1)
    metrics.shutdown()


def test_none_exporter_is_noop() -> None:
    metrics = configure_metrics("none")
    metrics.record_invocation("a", "failed", 0.1)


def test_console_exporter_prints_on_shutdown() -> None:
    out = io.StringIO()
    metrics = configure_metrics("console", console_out=out)
    metrics.record_invocation("act-console", "succeeded", 0.1)
    metrics.shutdown()
    assert "act-console" in out.getvalue()


def test_the_provider_is_process_wide_and_reconfigurable() -> None:
    first_port, second_port = free_port(), free_port()
    first = configure_metrics("prometheus", prometheus_port=first_port)
    assert configure_metrics("prometheus", prometheus_port=first_port) is first
    assert httpx.get(f"http://127.0.0.1:{first_port}/metrics").status_code == 200

    second = configure_metrics("prometheus", prometheus_port=second_port)

    assert second is not first
    assert httpx.get(f"http://127.0.0.1:{second_port}/metrics").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{first_port}/metrics")
    assert configure_metrics("prometheus", prometheus_port=first_port) is not second  # the old port is free again


def test_prometheus_serves_the_instruments_with_their_units() -> None:
    port = free_port()
    metrics = configure_metrics("prometheus", prometheus_port=port)
    metrics.record_invocation("act-prom", "succeeded", 0.03)
    metrics.record_invocation("act-prom", "failed", 0.2, "http.500")
    metrics.record_rate_limited()

    found = scrape(port)

    ok = frozenset({("dataactions_action_id", "act-prom"), ("dataactions_outcome", "succeeded")})
    failed = frozenset({("dataactions_action_id", "act-prom"), ("dataactions_outcome", "failed"),
                        ("error_type", "http.500")})
    assert found[("dataactions_invocations_total", ok)] == 1
    assert found[("dataactions_invocations_total", failed)] == 1
    assert found[("dataactions_invocation_duration_seconds_count", ok)] == 1
    assert found[("dataactions_invocation_duration_seconds_sum", failed)] == pytest.approx(0.2)
    assert found[("dataactions_rate_limited_responses_total", frozenset())] == 1
    assert any(name == "target_info" and ("service_name", "dataactions") in labels for name, labels in found)


def test_a_busy_prometheus_port_is_a_configuration_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}.*DATAACTIONS_METRICS_PORT"):
            configure_metrics("prometheus", prometheus_port=port)


def test_otlp_posts_protobuf_to_the_standard_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        metrics = configure_metrics("otlp")
        metrics.record_invocation("act-otlp", "succeeded", 0.05)
        metrics.shutdown()  # flushes
    finally:
        server.shutdown()
        server.server_close()

    assert received and received[0][0] == "/v1/metrics"
    request = ExportMetricsServiceRequest.FromString(received[0][1])
    names = {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"dataactions.invocations", "dataactions.invocation.duration"} <= names


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown metrics exporter"):
        configure_metrics("statsd")  # type: ignore[arg-type]
