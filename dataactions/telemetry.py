"""OpenTelemetry metrics of a run.

| instrument                          | kind      | unit | attributes        |
|-------------------------------------|-----------|------|-------------------|
| `dataactions.invocation.duration`   | histogram | s    | action, outcome   |
| `dataactions.invocations`           | counter   |      | action, outcome   |
| `dataactions.retries`               | counter   |      | reason            |
| `dataactions.rate_limited`          | counter   |      |                   |

`outcome` is `succeeded` or `failed`; `reason` is a failure class such as `http.503` or `timeout`. No row
identifier or input value is ever an attribute.

    metrics = configure_metrics("console")   # or "none", "otlp", "prometheus"
    metrics.record_invocation("custom_-_abc", "succeeded", 0.042)
    metrics.shutdown()                       # flush what is left
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Literal, TextIO

from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader

from dataactions.errors import ConfigurationError

__all__ = ["DURATION_BUCKETS_SECONDS", "ExporterName", "Metrics", "configure_metrics"]

ExporterName = Literal["none", "console", "otlp", "prometheus"]

DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_EXPORT_INTERVAL_MS = 30_000
_NO_ATTRIBUTES: dict[str, str] = {}


class Metrics:
    """The instruments of dataactions on one meter; recording is a dict lookup and a call."""

    def __init__(self, meter: Meter, *, provider: MeterProvider | None = None) -> None:
        self._provider = provider
        self._duration = meter.create_histogram(
            "dataactions.invocation.duration",
            unit="s",
            description="Time from the first attempt of an invocation to its outcome, retries included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_SECONDS,
        )
        self._invocations = meter.create_counter("dataactions.invocations", description="Finished invocations")
        self._retries = meter.create_counter("dataactions.retries", description="Attempts that were retried")
        self._rate_limited = meter.create_counter("dataactions.rate_limited", description="429 answers received")
        self._outcome_attrs: dict[tuple[str, str], dict[str, str]] = {}
        self._reason_attrs: dict[str, dict[str, str]] = {}

    @classmethod
    def noop(cls) -> Metrics:
        return cls(NoOpMeter("dataactions"))

    def record_invocation(self, action: str, outcome: str, seconds: float) -> None:
        attrs = self._outcome_attrs.get((action, outcome))
        if attrs is None:
            attrs = self._outcome_attrs[(action, outcome)] = {"action": action, "outcome": outcome}
        self._invocations.add(1, attrs)
        self._duration.record(seconds, attrs)

    def record_retry(self, reason: str) -> None:
        attrs = self._reason_attrs.get(reason)
        if attrs is None:
            attrs = self._reason_attrs[reason] = {"reason": reason}
        self._retries.add(1, attrs)

    def record_rate_limited(self) -> None:
        self._rate_limited.add(1, _NO_ATTRIBUTES)

    def shutdown(self) -> None:
        """Export what is left and stop the exporter (a no-op for `noop()` and caller-owned meters)."""
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None


def configure_metrics(
    exporter: ExporterName = "none", *, console_out: TextIO | None = None, prometheus_port: int = 9464
) -> Metrics:
    """Metrics exported to `exporter`; `ConfigurationError` if its package is not installed.

    `console` writes to `console_out` (default: the current `sys.stdout`); `otlp` reads the standard
    `OTEL_EXPORTER_OTLP_*` variables; `prometheus` serves a scrape endpoint on `prometheus_port`.
    """
    if exporter == "none":
        return Metrics.noop()
    reader = _reader(exporter, console_out or sys.stdout, prometheus_port)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    return Metrics(provider.get_meter("dataactions"), provider=provider)


def _reader(exporter: str, console_out: TextIO, prometheus_port: int) -> MetricReader:
    if exporter == "console":
        return PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=console_out), export_interval_millis=_EXPORT_INTERVAL_MS
        )
    if exporter == "otlp":
        module = _require("opentelemetry.exporter.otlp.proto.http.metric_exporter", "opentelemetry-exporter-otlp")
        return PeriodicExportingMetricReader(module.OTLPMetricExporter(), export_interval_millis=_EXPORT_INTERVAL_MS)
    if exporter == "prometheus":
        module = _require("opentelemetry.exporter.prometheus", "opentelemetry-exporter-prometheus")
        _require("prometheus_client", "prometheus-client").start_http_server(prometheus_port)
        return module.PrometheusMetricReader()  # type: ignore[no-any-return]
    raise ConfigurationError(f"unknown metrics exporter {exporter!r}; use none, console, otlp or prometheus")


def _require(module_name: str, package: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise ConfigurationError(
            f"the metrics exporter needs the package {package!r}, which is not installed: "
            f"pip install {package} (or set DATAACTIONS_METRICS_EXPORTER=console or none)"
        ) from None
