"""OpenTelemetry tracing of one plait process: a TracerProvider exporting spans over OTLP/gRPC
in the background (an unreachable collector never slows or fails a request), and W3C trace
context carried in gRPC metadata and HTTP headers. Imported only with `tracing=True`, or
by `metrics=True` for its meter provider."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Mapping, Optional

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
EXPORT_TIMEOUT = 5.0       # seconds one export may take before it is dropped
SHUTDOWN_FLUSH_MS = 2000   # spans still queued get this long on exit


class Tracing:
    """The tracer of one process, named after it (`executor0/rep-1`, `gateway`)."""

    def __init__(self, service_name: str, endpoint: str, logger: logging.Logger):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.endpoint = endpoint
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=EXPORT_TIMEOUT)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer('plait')
        warn_if_unreachable(endpoint, 'trace collector', logger)

    def start_span(self, name: str, parent: Any = None, kind: Any = trace.SpanKind.INTERNAL,
                   attributes: Optional[dict[str, Any]] = None) -> Any:
        return self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)

    def close(self) -> None:
        self.provider.force_flush(SHUTDOWN_FLUSH_MS)
        self.provider.shutdown()


class _OncePerMinute(logging.Filter):
    """Lets one record through per minute: a collector that stays down is not a log flood."""

    def __init__(self) -> None:
        super().__init__()
        self._last = float('-inf')

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        now = time.monotonic()
        if now - self._last < 60:
            return False
        self._last = now
        return True


_EXPORTER_LOGGERS = ('opentelemetry.exporter.otlp.proto.grpc.exporter', 'opentelemetry.sdk._shared_internal')


def quiet_exporter_logs() -> None:
    """The OTLP exporters log every failed export (several a second while a collector is down):
    keep one line a minute."""
    for name in _EXPORTER_LOGGERS:
        exporter_logger = logging.getLogger(name)
        if not any(isinstance(f, _OncePerMinute) for f in exporter_logger.filters):
            exporter_logger.addFilter(_OncePerMinute())


def warn_if_unreachable(endpoint: str, what: str, logger: logging.Logger) -> None:
    """Log one clear line, from a background thread, when nothing listens at `endpoint`."""
    quiet_exporter_logs()

    def check() -> None:
        host, _, port = endpoint.rpartition(':')
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except (OSError, ValueError) as e:
            logger.warning('%s at %s is unreachable (%s): its data is dropped until it is up; requests are '
                           'served as usual', what, endpoint, getattr(e, 'strerror', None) or e)

    threading.Thread(target=check, name='plait-otlp-check', daemon=True).start()


def context_from(carrier: Optional[Mapping[str, str]]) -> Any:
    """The trace context a caller sent (`traceparent` in gRPC metadata or HTTP headers)."""
    if not carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def context_of(span: Any) -> Any:
    return trace.set_span_in_context(span)


def headers_for(context: Any) -> dict[str, str]:
    """`traceparent` (and `tracestate`) that carry `context` to the next hop."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def end_span(span: Any, ok: bool, description: str = '') -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute('plait.status', 'SUCCESS' if ok else 'ERROR')
    if not ok:
        span.set_status(Status(StatusCode.ERROR, description[:200]))
    span.end()


def caller_headers() -> dict[str, str]:
    """The trace context of the caller's current span (none when there is no valid one)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    return headers_for(None)


def client_span(tracing: Tracing, endpoint: str) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """A `client <endpoint>` span under the caller's current one, and its trace metadata."""
    span = tracing.start_span(f'client {endpoint}', None, trace.SpanKind.CLIENT, {'plait.endpoint': endpoint})
    return span, tuple(headers_for(context_of(span)).items())
