"""The hooks the worker and the gateway call when observability is on (they hold None
otherwise, so an unobserved request pays one `is None` test): each request timed, counted
and measured in bytes (Prometheus, `monitoring=True`) and made a span (`tracing=True`) whose
trace context travels to the next hop in gRPC metadata.

Spans of one request: the caller's (if it sent `traceparent`) -> `gateway <endpoint>` (server)
-> `<deployment> <endpoint>` per executor call (client) -> `<replica> <endpoint>` in the
executor (server) -> `<endpoint>` around the Executor's method, whose context the method
receives as `tracing_context`."""

from __future__ import annotations

import contextvars
import logging
import os
import time
from typing import Any, Awaitable, Callable, Mapping, Optional

from plait.observability import ObservabilityConfig

ERROR = 1  # StatusProto.ERROR
RESTARTS_ENV = 'PLAIT_RESTARTS'   # how many times the supervisor restarted this process

# the context of the span a nested hook should hang under (set per request task)
_PARENT: contextvars.ContextVar[Any] = contextvars.ContextVar('plait_trace_parent', default=None)
# trace headers of an HTTP/WebSocket request, set by the tracing middleware of the HTTP app
INCOMING_HEADERS: contextvars.ContextVar[Optional[Mapping[str, str]]] = contextvars.ContextVar(
    'plait_incoming_headers', default=None)


def _restarts() -> int:
    value = os.environ.get(RESTARTS_ENV, '0')
    return int(value) if value.isdigit() else 0


def _carrier(source: Any) -> Optional[Mapping[str, str]]:
    """Trace headers from a gRPC servicer context, a metadata mapping, or (None) the HTTP request."""
    if source is None:
        return INCOMING_HEADERS.get()
    if hasattr(source, 'invocation_metadata'):
        return dict(source.invocation_metadata() or ())
    return source


class _Instruments:
    """Prometheus metrics, tracer and OpenTelemetry meter of one process, as configured."""

    def __init__(self, config: ObservabilityConfig, runtime_name: str, logger: logging.Logger):
        self.config = config
        self.runtime_name = runtime_name
        self.logger = logger
        self.tracing: Any = None
        self.meter_provider: Any = None
        if config.tracing:
            from plait.observability.tracing import Tracing

            self.tracing = Tracing(runtime_name, config.traces_endpoint(), logger)
        if config.metrics:
            from plait.observability.otel_metrics import meter_provider

            self.meter_provider = meter_provider(runtime_name, config.metrics_endpoint(), logger)

    @property
    def tracer_provider(self) -> Any:
        return self.tracing.provider if self.tracing is not None else None

    def _close_exporters(self) -> None:
        for closer in (self.tracing, self.meter_provider):
            if closer is None:
                continue
            try:
                closer.close() if hasattr(closer, 'close') else closer.shutdown()
            except Exception as e:  # a collector that is down must not fail the shutdown
                self.logger.debug('closing an exporter: %r', e)


class WorkerObserver(_Instruments):
    """Hooks of an executor replica: `serve` around each request, `call_method` around the
    Executor's method."""

    def __init__(self, config: ObservabilityConfig, runtime_name: str, logger: logging.Logger):
        super().__init__(config, runtime_name, logger)
        self.metrics: Any = None
        if config.monitoring:  # made now: the Executor registers its own metrics while it is built
            from plait.observability.metrics import WorkerMetrics

            self.metrics = WorkerMetrics(runtime_name, '', _restarts())
        self.executor: Any = None
        self.otel: Any = None

    def attach(self, executor: Any, host: str, is_serving: Callable[[], bool]) -> None:
        """The Executor is built: label metrics with its class, serve them, count with its meter."""
        self.executor = executor
        name = type(executor).__name__
        if self.metrics is not None:
            self.metrics.executor = name
            self.metrics.watch_health(is_serving)
            self.metrics.serve(host, self.config.port_monitoring, self.logger)
        if self.meter_provider is not None:
            from plait.observability.otel_metrics import WorkerMeter

            self.otel = WorkerMeter(self.meter_provider, self.runtime_name, name)

    def runtime_args(self) -> dict[str, Any]:
        """What the Executor gets in `runtime_args` (as Jina passes them)."""
        return {'tracer_provider': self.tracer_provider,
                'meter_provider': self.meter_provider,
                'metrics_registry': self.metrics.registry if self.metrics is not None else None}

    def _endpoint(self, request: Any) -> str:
        header = request.header
        endpoint = header.exec_endpoint if header.HasField('exec_endpoint') else '/'
        key = self.executor.resolve_endpoint(endpoint) if self.executor is not None else None
        return key or '(unknown)'   # a bounded label set: only endpoints the Executor serves

    async def serve(self, requests: list[Any], context: Any,
                    process: Callable[[list[Any], Any], Awaitable[Any]]) -> Any:
        endpoint = self._endpoint(requests[0])
        span = token = None
        if self.tracing is not None:
            from opentelemetry.trace import SpanKind

            from plait.observability.tracing import context_from, context_of

            span = self.tracing.start_span(
                f'{self.runtime_name} {endpoint}', context_from(_carrier(context) if context else None),
                SpanKind.SERVER, {'plait.executor': self.executor_name, 'plait.endpoint': endpoint,
                                  'plait.replica': self.runtime_name,
                                  'plait.request_id': requests[0].header.request_id})
            token = _PARENT.set(context_of(span))
        if self.metrics is not None:
            self.metrics.pending.inc()
        start = time.perf_counter()
        response = None
        try:
            response = await process(requests, context)
            return response
        finally:
            seconds = time.perf_counter() - start
            ok = response is not None and response.header.status.code != ERROR
            if self.metrics is not None:
                self.metrics.pending.dec()
                self.metrics.request(endpoint, seconds, ok, sum(r.ByteSize() for r in requests),
                                     response.ByteSize() if response is not None else 0)
            if self.otel is not None:
                self.otel.request(endpoint, seconds, ok)
            if span is not None:
                from plait.observability.tracing import end_span

                _PARENT.reset(token)
                end_span(span, ok, response.header.status.description if response is not None else 'refused')

    @property
    def executor_name(self) -> str:
        return self.runtime_name.split('/')[0]

    async def call_method(self, endpoint: str, invoke: Callable[[Any], Awaitable[Any]]) -> Any:
        """Time the Executor's method; with tracing, run it in a span it gets as `tracing_context`."""
        span = tracing_context = None
        if self.tracing is not None:
            from plait.observability.tracing import context_of

            span = self.tracing.start_span(endpoint, _PARENT.get(), attributes={'plait.endpoint': endpoint})
            tracing_context = context_of(span)
        start = time.perf_counter()
        ok, description = False, ''
        try:
            result = await invoke(tracing_context)
            ok = True
            return result
        except Exception as e:
            description = repr(e)
            raise
        finally:
            seconds = time.perf_counter() - start
            if self.metrics is not None:
                self.metrics.method(endpoint, seconds)
            if self.otel is not None:
                self.otel.method(endpoint, seconds)
            if span is not None:
                from plait.observability.tracing import end_span

                end_span(span, ok, description)

    def batch(self, stats: Any) -> None:
        """One call of a dynamically batched method (plait.serve.batching.BatchStats)."""
        if self.metrics is not None:
            self.metrics.batch(stats.endpoint, stats.docs, stats.queued_seconds)

    def stream_item(self, endpoint: str) -> None:
        """One item sent by a streaming (generator) endpoint: `plait_stream_items_total`."""
        if self.metrics is not None:
            self.metrics.stream_item(endpoint)

    def documents(self, endpoint: str, count: int) -> None:
        if self.metrics is not None:
            self.metrics.documents_processed(endpoint, count)
        if self.otel is not None:
            self.otel.documents(endpoint, count)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        self._close_exporters()


class GatewayObserver(_Instruments):
    """Hooks of the gateway: `process` around each client request, `sender` around each call
    to a deployment."""

    def __init__(self, config: ObservabilityConfig, runtime_name: str, logger: logging.Logger):
        super().__init__(config, runtime_name, logger)
        self.metrics: Any = None
        if config.monitoring:
            from plait.observability.metrics import GatewayMetrics

            self.metrics = GatewayMetrics(runtime_name, _restarts())
        self.otel: Any = None
        if self.meter_provider is not None:
            from plait.observability.otel_metrics import GatewayMeter

            self.otel = GatewayMeter(self.meter_provider, runtime_name)

    @property
    def forces_unary(self) -> bool:
        """Trace context rides in per-call metadata, so traced requests are sent as unary
        calls, not on the replica's shared stream."""
        return self.tracing is not None

    def serve_metrics(self, host: str, replicas: Callable[[], Any]) -> None:
        if self.metrics is not None:
            self.metrics.watch_replicas(replicas)
            self.metrics.serve(host, self.config.port_monitoring, self.logger)

    async def process(self, request: Any, carrier: Any, route: Callable[[Any], Awaitable[Any]]) -> Any:
        header = request.header
        endpoint = header.exec_endpoint if header.HasField('exec_endpoint') else '/'
        span = token = None
        if self.tracing is not None:
            from opentelemetry.trace import SpanKind

            from plait.observability.tracing import context_from, context_of

            span = self.tracing.start_span(f'gateway {endpoint}', context_from(_carrier(carrier)), SpanKind.SERVER,
                                           {'plait.endpoint': endpoint, 'plait.request_id': header.request_id})
            token = _PARENT.set(context_of(span))
        if self.metrics is not None:
            self.metrics.pending.inc()
        received = request.ByteSize() if self.metrics is not None else 0
        start = time.perf_counter()
        response = None
        try:
            response = await route(request)
            return response
        finally:
            seconds = time.perf_counter() - start
            ok = response is not None and response.header.status.code != ERROR
            if self.metrics is not None:
                self.metrics.pending.dec()
                self.metrics.request(seconds, ok, received, response.ByteSize() if response is not None else 0)
            if self.otel is not None:
                self.otel.request(seconds, ok)
            if span is not None:
                from plait.observability.tracing import end_span

                _PARENT.reset(token)
                end_span(span, ok, response.header.status.description if response is not None else 'failed')

    def sender(self, deployment: str, endpoint: str,
               send: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`send` (DeploymentConnections.send) timed, and carrying the trace context onwards."""

        async def observed(shard: Any, request_id: str, payload: bytes, timeout: Optional[float],
                           metadata: tuple, **options: Any) -> Any:
            span = None
            if self.tracing is not None:
                from opentelemetry.trace import SpanKind

                from plait.observability.tracing import context_of, headers_for

                span = self.tracing.start_span(
                    f'{deployment} {endpoint}', _PARENT.get(), SpanKind.CLIENT,
                    {'plait.executor': deployment, 'plait.endpoint': endpoint,
                     'plait.replicas': [r.address for r in shard.replicas]})
                metadata = metadata + tuple(headers_for(context_of(span)).items())
            start = time.perf_counter()
            response = None
            try:
                response = await send(shard, request_id, payload, timeout, metadata,
                                      **{'stream': not self.forces_unary, **options})
                return response
            finally:
                seconds = time.perf_counter() - start
                if self.metrics is not None:
                    self.metrics.call(deployment, seconds, len(payload),
                                      response.ByteSize() if response is not None else None)
                if self.otel is not None:
                    self.otel.call(deployment, seconds)
                if span is not None:
                    from plait.observability.tracing import end_span

                    ok = response is not None and response.header.status.code != ERROR
                    end_span(span, ok, response.header.status.description if response is not None else 'failed')

        return observed

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        self._close_exporters()


def tracing_middleware(app: Any) -> Any:
    """An ASGI middleware that hands the HTTP/WebSocket request's trace headers to the gateway
    span (installed only with tracing on)."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope['type'] in ('http', 'websocket'):
            headers = {k.decode('latin-1').lower(): v.decode('latin-1') for k, v in scope.get('headers') or ()
                       if k.lower() in (b'traceparent', b'tracestate')}
            token = INCOMING_HEADERS.set(headers)
            try:
                await app(scope, receive, send)
            finally:
                INCOMING_HEADERS.reset(token)
            return
        await app(scope, receive, send)

    return middleware
