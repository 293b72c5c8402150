"""Observability of plait processes: Prometheus metrics (`monitoring=True`, served on
`port_monitoring`), OpenTelemetry traces (`tracing=True`, OTLP over gRPC) and OpenTelemetry
metrics (`metrics=True`), with the option names Jina uses.

The options are fields of WorkerConfig and GatewayConfig (so they are Flow, Flow.add,
Deployment and YAML keywords); this module gathers them and imports nothing heavy.
`metrics`, `tracing` and `observers` import prometheus_client and OpenTelemetry, and are
imported only when an option is on."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any, Optional

DEFAULT_EXPORTER_HOST = 'localhost'
DEFAULT_EXPORTER_PORT = 4317   # the OTLP gRPC port


@dataclass
class ObservabilityConfig:
    """What one process reports, and where."""

    monitoring: bool = False                 # Prometheus text on port_monitoring
    port_monitoring: Optional[int] = None
    tracing: bool = False                    # spans to an OTLP gRPC collector
    traces_exporter_host: Optional[str] = None
    traces_exporter_port: Optional[int] = None
    metrics: bool = False                    # OpenTelemetry metrics to an OTLP gRPC collector
    metrics_exporter_host: Optional[str] = None
    metrics_exporter_port: Optional[int] = None

    @property
    def enabled(self) -> bool:
        return self.monitoring or self.tracing or self.metrics

    def traces_endpoint(self) -> str:
        return _endpoint(self.traces_exporter_host, self.traces_exporter_port)

    def metrics_endpoint(self) -> str:
        return _endpoint(self.metrics_exporter_host, self.metrics_exporter_port)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, config: Any) -> 'ObservabilityConfig':
        """The observability options of a WorkerConfig or GatewayConfig (fields of the same names)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


OPTION_NAMES = tuple(f.name for f in fields(ObservabilityConfig))


def _endpoint(host: Optional[str], port: Optional[int]) -> str:
    host = host or DEFAULT_EXPORTER_HOST
    for scheme in ('http://', 'https://', 'grpc://'):
        if host.startswith(scheme):
            host = host[len(scheme):]
    return f'{host}:{port or DEFAULT_EXPORTER_PORT}'


def client_trace(tracing: Any, endpoint: str) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """(span, trace metadata) for a client's post: a `client <endpoint>` span with
    `Client(tracing=True)`; else the caller's current span if its process uses OpenTelemetry
    (checked without importing it), so the caller's trace goes on through the Flow."""
    if tracing is not None:
        from plait.observability.tracing import client_span
        return client_span(tracing, endpoint)
    if 'opentelemetry.trace' not in sys.modules:
        return None, ()
    from plait.observability.tracing import caller_headers
    return None, tuple(caller_headers().items())
