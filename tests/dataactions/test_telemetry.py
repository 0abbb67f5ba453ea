"""Metrics instruments read back through the OpenTelemetry SDK's in-memory reader, and exporter selection."""

from __future__ import annotations

import importlib.util
import io

import pytest

from dataactions.errors import ConfigurationError
from dataactions.telemetry import Metrics, configure_metrics
from tests.dataactions.conftest import collected, in_memory_metrics, points


def test_invocations_are_counted_and_timed_by_action_and_outcome() -> None:
    metrics, reader = in_memory_metrics()
    metrics.record_invocation("act-1", "succeeded", 0.2)
    metrics.record_invocation("act-1", "succeeded", 0.4)
    metrics.record_invocation("act-1", "failed", 1.5)
    found = collected(reader)
    counts = points(found["dataactions.invocations"])
    assert counts[(("action", "act-1"), ("outcome", "succeeded"))].value == 2
    assert counts[(("action", "act-1"), ("outcome", "failed"))].value == 1
    duration = found["dataactions.invocation.duration"]
    assert duration.unit == "s"
    ok = points(duration)[(("action", "act-1"), ("outcome", "succeeded"))]
    assert ok.count == 2 and ok.sum == pytest.approx(0.6)
    assert 0.25 in ok.explicit_bounds and 60.0 in ok.explicit_bounds


def test_retries_by_reason_and_rate_limits() -> None:
    metrics, reader = in_memory_metrics()
    metrics.record_retry("http.503")
    metrics.record_retry("http.503")
    metrics.record_retry("timeout")
    metrics.record_rate_limited()
    found = collected(reader)
    retries = points(found["dataactions.retries"])
    assert retries[(("reason", "http.503"),)].value == 2
    assert retries[(("reason", "timeout"),)].value == 1
    assert points(found["dataactions.rate_limited"])[()].value == 1


def test_noop_metrics_accept_everything() -> None:
    metrics = Metrics.noop()
    metrics.record_invocation("a", "succeeded", 0.1)
    metrics.record_retry("transport")
    metrics.record_rate_limited()
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


@pytest.mark.parametrize(
    ("exporter", "module", "package"),
    [
        ("otlp", "opentelemetry.exporter.otlp.proto.http.metric_exporter", "opentelemetry-exporter-otlp"),
        ("prometheus", "opentelemetry.exporter.prometheus", "opentelemetry-exporter-prometheus"),
    ],
)
def test_an_exporter_without_its_package_is_a_configuration_error(exporter: str, module: str, package: str) -> None:
    try:
        installed = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        installed = False
    if installed:
        pytest.skip(f"{package} is installed")
    with pytest.raises(ConfigurationError, match=package):
        configure_metrics(exporter)  # type: ignore[arg-type]


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown metrics exporter"):
        configure_metrics("statsd")  # type: ignore[arg-type]
