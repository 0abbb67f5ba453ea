"""OpenTelemetry metrics: one process-wide meter provider, exported where `DATAACTIONS_METRICS_EXPORTER` says.

| instrument                           | kind      | unit           | attributes                                    |
|--------------------------------------|-----------|----------------|-----------------------------------------------|
| `dataactions.invocations`            | counter   | `{invocation}` | action id, outcome, `error.type` (failures)   |
| `dataactions.invocation.duration`    | histogram | `s`            | as `dataactions.invocations`                  |
| `dataactions.rows`                   | counter   | `{row}`        | action id, outcome                            |
| `dataactions.retries`                | counter   | `{retry}`      | `error.type`                                  |
| `dataactions.rate_limited.responses` | counter   | `{response}`   | (none)                                        |
| `http.client.request.duration`       | histogram | `s`            | HTTP semantic conventions (below)             |
| `http.server.request.duration`       | histogram | `s`            | HTTP semantic conventions (below)             |

Attributes: `dataactions.action.id`, `dataactions.outcome`, `error.type`; the client histogram has
`http.request.method`, `url.template`, `server.address`, `server.port`, `http.response.status_code` and, on a
failure, `error.type`; the server histogram (recorded by `dataactions serve`) has `http.request.method`,
`http.route` and `http.response.status_code`.

An invocation is one row sent to an action (or a workflow), retries included; its duration runs from the first
attempt to the outcome. `dataactions.outcome` is `succeeded` or `failed` (rows also `rejected`: never sent).
`dataactions.action.id` is the action id, or the workflow's flow id in workflow mode. `error.type` is a short,
low-cardinality failure class (`http.503`, `timeout`, `transport`, `workflow.failed`...), only on failures.
`http.client.request.duration` is one HTTP attempt to the Genesys API, as the HTTP semantic conventions define
it (`url.template` such as `/api/v2/integrations/actions/{actionId}/execute`, never an id). No row key, input
value or correlation id is ever an attribute.

The provider is process-wide (one Prometheus endpoint per process, one OTLP export loop): `configure_metrics`
returns the configured `Metrics`, building it on first use; asking again with the same settings returns the same
object, asking with other settings shuts the old exporter down first. It does not install itself as
OpenTelemetry's global meter provider, which can be set once per process and may belong to the host application.

    metrics = configure_metrics("prometheus", prometheus_port=9464)   # or "none", "console", "otlp"
    metrics.record_invocation("custom_-_abc", "succeeded", 0.042)
    shutdown_metrics()                                                # flush and stop (also at exit)
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from dataactions.errors import ConfigurationError

__all__ = [
    "DURATION_BUCKETS_SECONDS",
    "HTTP_DURATION_BUCKETS_SECONDS",
    "ExporterName",
    "Metrics",
    "configure_metrics",
    "metrics_from_settings",
    "shutdown_metrics",
]

ExporterName = Literal["none", "console", "otlp", "prometheus"]

DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Invocations: milliseconds for a cached lookup up to minutes for a workflow or a long 429 wait."""
HTTP_DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The HTTP semantic conventions' advisory boundaries for `http.*.request.duration`."""

_DEFAULT_EXPORT_INTERVAL_MS = 30_000
_NO_ATTRIBUTES: dict[str, str] = {}
ACTION, OUTCOME, ERROR_TYPE = "dataactions.action.id", "dataactions.outcome", "error.type"


class Metrics:
    """The instruments of dataactions on one meter; recording is a dict lookup and a call."""

    def __init__(self, meter: Meter, *, provider: MeterProvider | None = None,
                 on_shutdown: Callable[[], None] | None = None) -> None:
        self._provider = provider
        self._on_shutdown = on_shutdown
        self.enabled = not isinstance(meter, NoOpMeter)  # callers may skip preparing what a no-op would drop
        self._invocations = meter.create_counter(
            "dataactions.invocations", unit="{invocation}",
            description="Rows sent to an action or workflow that reached an outcome (retries included)")
        self._duration = meter.create_histogram(
            "dataactions.invocation.duration", unit="s",
            description="Time from the first attempt of an invocation to its outcome, retries and waits included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_SECONDS)
        self._rows = meter.create_counter(
            "dataactions.rows", unit="{row}", description="Input rows that reached an outcome, rejected ones included")
        self._retries = meter.create_counter(
            "dataactions.retries", unit="{retry}", description="Attempts that failed and were tried again")
        self._rate_limited = meter.create_counter(
            "dataactions.rate_limited.responses", unit="{response}", description="429 answers received from Genesys")
        self._http_client = meter.create_histogram(
            "http.client.request.duration", unit="s", description="Duration of HTTP client requests",
            explicit_bucket_boundaries_advisory=HTTP_DURATION_BUCKETS_SECONDS)
        self._http_server = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests",
            explicit_bucket_boundaries_advisory=HTTP_DURATION_BUCKETS_SECONDS)
        self._attrs: dict[tuple[Any, ...], dict[str, Any]] = {}

    @classmethod
    def noop(cls) -> Metrics:
        return cls(NoOpMeter("dataactions"))

    def _attributes(self, key: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        attrs = self._attrs.get(key)
        if attrs is None:
            if len(self._attrs) > 10_000:  # a runaway label set must not grow memory without bound
                self._attrs.clear()
            attrs = self._attrs[key] = build()
        return attrs

    def record_invocation(self, action: str, outcome: str, seconds: float, error_type: str | None = None) -> None:
        if not self.enabled:  # once per row: a no-op meter should cost nothing
            return
        attrs = self._attributes(("inv", action, outcome, error_type), lambda: _without_none(
            {ACTION: action, OUTCOME: outcome, ERROR_TYPE: error_type}))
        self._invocations.add(1, attrs)
        self._duration.record(seconds, attrs)

    def record_rows(self, action: str, outcome: str, count: int = 1) -> None:
        if count:
            self._rows.add(count, self._attributes(("rows", action, outcome),
                                                   lambda: {ACTION: action, OUTCOME: outcome}))

    def record_retry(self, reason: str) -> None:
        self._retries.add(1, self._attributes(("retry", reason), lambda: {ERROR_TYPE: reason}))

    def record_rate_limited(self) -> None:
        self._rate_limited.add(1, _NO_ATTRIBUTES)

    def record_http_client(self, method: str, template: str, host: str, port: int | None,
                           status: int | None, seconds: float, error_type: str | None = None) -> None:
        """One HTTP attempt to the API: `status` None when no answer came (then `error_type` says why)."""
        if status is not None and status >= 400 and error_type is None:
            error_type = str(status)
        key = ("http", method, template, host, port, status, error_type)
        attrs = self._attributes(key, lambda: _without_none({
            "http.request.method": method, "url.template": template, "server.address": host, "server.port": port,
            "http.response.status_code": status, ERROR_TYPE: error_type}))
        self._http_client.record(seconds, attrs)

    def record_http_server(self, method: str, route: str, status: int, seconds: float) -> None:
        attrs = self._attributes(("server", method, route, status), lambda: {
            "http.request.method": method, "http.route": route, "http.response.status_code": status})
        self._http_server.record(seconds, attrs)

    def shutdown(self) -> None:
        """Export what is left and stop the exporter (a no-op for `noop()` and caller-owned meters)."""
        global _current
        with _lock:
            if _current is not None and _current[1] is self:
                _current = None
        if self._provider is not None:
            provider, self._provider = self._provider, None
            provider.shutdown()
        if self._on_shutdown is not None:
            stop, self._on_shutdown = self._on_shutdown, None
            stop()


def _without_none(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}


@dataclass(frozen=True)
class _Choice:
    exporter: str
    console_out: int | None
    host: str
    port: int


_lock = threading.RLock()
_current: tuple[_Choice, Metrics] | None = None


def configure_metrics(
    exporter: ExporterName = "none", *, console_out: TextIO | None = None,
    prometheus_host: str = "127.0.0.1", prometheus_port: int = 9464,
) -> Metrics:
    """The process's `Metrics`, exported to `exporter`; `ConfigurationError` if its package is missing.

    `console` writes to `console_out` (default: the current `sys.stdout`) every `OTEL_METRIC_EXPORT_INTERVAL` ms
    (30 s unless set) and at exit; `otlp` sends OTLP over HTTP to the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
    `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (default `http://localhost:4318/v1/metrics`) on the same interval;
    `prometheus` serves `http://HOST:PORT/metrics` from a thread of this process.
    """
    global _current
    if exporter not in ("none", "console", "otlp", "prometheus"):
        raise ConfigurationError(f"unknown metrics exporter {exporter!r}; use none, console, otlp or prometheus")
    out = (console_out or sys.stdout) if exporter == "console" else None
    prometheus = exporter == "prometheus"
    choice = _Choice(exporter, id(out) if out is not None else None,
                     prometheus_host if prometheus else "", prometheus_port if prometheus else 0)
    with _lock:
        if _current is not None:
            if _current[0] == choice:
                return _current[1]
            _current[1].shutdown()
        metrics = Metrics.noop() if exporter == "none" else _build(exporter, out, prometheus_host, prometheus_port)
        _current = (choice, metrics)
        return metrics


def metrics_from_settings(pipeline: Any) -> Metrics:
    """`configure_metrics` with the `DATAACTIONS_METRICS_*` settings of a `PipelineSettings`."""
    return configure_metrics(pipeline.metrics_exporter, prometheus_host=getattr(pipeline, "metrics_host", "127.0.0.1"),
                             prometheus_port=getattr(pipeline, "metrics_port", 9464))


def shutdown_metrics() -> None:
    """Flush and stop the process's exporter (registered to run at exit); the next `configure_metrics` starts anew."""
    with _lock:
        current = _current
    if current is not None:
        current[1].shutdown()


atexit.register(shutdown_metrics)


def _build(exporter: str, console_out: TextIO | None, host: str, port: int) -> Metrics:
    resource = _resource()
    if exporter == "prometheus":
        reader, stop = _prometheus(host, port)
    elif exporter == "otlp":
        module = _require("opentelemetry.exporter.otlp.proto.http.metric_exporter",
                          "opentelemetry-exporter-otlp-proto-http")
        reader, stop = PeriodicExportingMetricReader(module.OTLPMetricExporter(),
                                                     export_interval_millis=_export_interval_ms()), None
    else:
        reader, stop = PeriodicExportingMetricReader(ConsoleMetricExporter(out=console_out or sys.stdout),
                                                     export_interval_millis=_export_interval_ms()), None
    provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    return Metrics(provider.get_meter("dataactions"), provider=provider, on_shutdown=stop)


def _prometheus(host: str, port: int) -> tuple[MetricReader, Callable[[], None]]:
    """A reader on a registry of its own, served on HOST:PORT; returns it and how to stop serving."""
    module = _require("opentelemetry.exporter.prometheus", "opentelemetry-exporter-prometheus")
    client = _require("prometheus_client", "prometheus-client")
    registry = client.CollectorRegistry(auto_describe=True)
    client.ProcessCollector(registry=registry)
    reader = module.PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    try:
        server, thread = client.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reader.shutdown()
        raise ConfigurationError(
            f"cannot serve Prometheus metrics on {host}:{port}: {exc.strerror or exc}; "
            "set DATAACTIONS_METRICS_PORT (and DATAACTIONS_METRICS_HOST) to a free address") from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return reader, stop


def _resource() -> Resource:
    """`service.name` is `dataactions` unless `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` say otherwise."""
    detected = Resource.create()
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        return detected.merge(Resource({"service.name": "dataactions"}))
    return detected


def _export_interval_ms() -> float:
    try:
        return float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", _DEFAULT_EXPORT_INTERVAL_MS))
    except ValueError:
        raise ConfigurationError("OTEL_METRIC_EXPORT_INTERVAL must be a number of milliseconds") from None


def _require(module_name: str, package: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise ConfigurationError(
            f"the metrics exporter needs the package {package!r}, which is not installed: "
            f"pip install {package} (or set DATAACTIONS_METRICS_EXPORTER=console or none)"
        ) from None
