"""H. Observability on and off: the same 1-executor Flow (gRPC, no-op Executor) served plain,
with Prometheus metrics (monitoring=True), with OpenTelemetry tracing to an OTLP receiver
(tracing=True), and with both; latency and throughput of each beside the plain Flow measured
in the same repetition. Also what an unobserved executor and gateway import."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from concurrent import futures
from typing import Any

from common import LOCAL, Settings, guarded, python_env, section_main
from load import client_latency, client_throughput
from results import Section, Table, Target
from stats import median, ms

CLIENTS = 8
CONFIGS = {
    'off': {},
    'monitoring': {'monitoring': True},
    'tracing': {'tracing': True},
    'monitoring + tracing': {'monitoring': True, 'tracing': True},
    # OpenTelemetry's standard sampler variables, read by every process: 1 trace in 10 recorded
    'tracing, 10% of traces sampled': {'tracing': True, 'env': {'OTEL_TRACES_SAMPLER': 'parentbased_traceidratio',
                                                                'OTEL_TRACES_SAMPLER_ARG': '0.1'}},
}


class _Sink:
    """An OTLP/gRPC trace receiver that counts and drops what it is sent (the collector)."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        sink = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                with sink.lock:
                    sink.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.spans = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port(f'{LOCAL}:0')
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0)


def _flow(options: dict[str, Any], sink: _Sink) -> Any:
    from bench_executors import NoOp

    from plait import Flow

    extra = dict(options)
    if extra.get('tracing'):
        extra.update(traces_exporter_host=LOCAL, traces_exporter_port=sink.port)
    return Flow(quiet=True, **extra).add(uses=NoOp)


def _traffic(section: Section, settings: Settings) -> None:
    count = 150 if settings.quick else 600
    seconds = 1.0 if settings.quick else 3.0
    sink = _Sink()
    try:
        for _ in range(settings.reps):
            measured: dict[str, tuple[float, float]] = {}
            for name, options in CONFIGS.items():  # interleaved: every configuration in every repetition
                with _flow(options, sink) as f:
                    latency = median(ms(client_latency(f.port, 'grpc', count, warmup=50)))
                    rate = client_throughput(f.port, 'grpc', CLIENTS, seconds)
                measured[name] = (latency, rate)
            off_latency, off_rate = measured['off']
            for name, (latency, rate) in measured.items():
                on = name != 'off'
                p50 = section.row(f'latency p50, {name}', 'ms', Target('ratio_max', 1.15) if on else None,
                                  note='floor: the plain Flow, same repetition' if on else '1 sequential client')
                p50.plait.append(latency)
                tput = section.row(f'throughput, {name}', 'req/s', Target('ratio_min', 0.85) if on else None,
                                   note='floor: the plain Flow, same repetition' if on else f'{CLIENTS} clients')
                tput.plait.append(rate)
                if on:
                    p50.floor.append(off_latency)
                    tput.floor.append(off_rate)
        section.notes.append(f'The OTLP receiver (in the benchmark process) was sent {sink.spans} spans in all.')
    finally:
        sink.stop()


_IMPORTS = {
    'executor process (worker runtime, Executor, documents)':
        'import plait.serve.worker, plait.executor, plait.documents',
    'gateway process (runtime, gRPC, HTTP app built, WebSocket)':
        'import logging, plait.serve.gateway.runtime, plait.serve.gateway.grpc_gateway, '
        'plait.serve.gateway.websocket\n'
        'from plait.serve.gateway.http_app import build_app\n'
        'from plait.serve.gateway.config import GatewayConfig\n'
        'from plait.serve.gateway.core import GatewayCore\n'
        'build_app(GatewayCore(GatewayConfig(), logging.getLogger()), GatewayConfig())',
}


def _imports(section: Section) -> None:
    rows = []
    for what, code in _IMPORTS.items():
        script = (code + '\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('
                  '("prometheus_client", "opentelemetry"))))')
        out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120,
                             env=python_env(), check=True)
        loaded = ast.literal_eval(out.stdout.strip())
        ours = [m for m in loaded if m.startswith(('prometheus_client', 'opentelemetry.sdk', 'opentelemetry.exporter'))]
        api = [m for m in loaded if m not in ours]
        rows.append([what, str(len(ours)), str(len(api))])
    section.tables.append(Table('Modules an unobserved process imports (monitoring, tracing and metrics off)',
                                ['process', 'prometheus_client / OpenTelemetry SDK / exporters',
                                 'OpenTelemetry API (FastAPI imports it itself)'], rows))


def new_section() -> Section:
    return Section('observability', 'H. Observability on and off', notes=[
        ('Flow: one no-op Executor (`benchmarks/bench_executors.py:NoOp`) behind the gRPC gateway, started '
         'once per configuration and repetition, the configurations interleaved. Latency: one `Client` '
         'posting 1 document after the other; throughput: 8 `AsyncClient`s in one event loop.'),
        ('Floor: the same Flow with monitoring and tracing off, measured in the same repetition. Targets '
         '(reported, not asserted): each observed configuration keeps p50 within 1.15x and throughput '
         'within 0.85x of the plain Flow.'),
        ('Off: the worker and the gateway hold `None` instead of an observer, so an unobserved request '
         'pays one `is None` test per hook (two in the executor process, two in the gateway per '
         'deployment called) and nothing is imported (table below). FastAPI >= 0.16x records its own '
         'OpenTelemetry telemetry per HTTP request; plait turns that off in its HTTP app.'),
        ('Tracing on: every request is 1 gateway span, 1 client span per deployment, 1 server span and '
         '1 method span per executor, exported in batches by a background thread; the gateway sends '
         'traced requests as unary calls (trace context rides in per-call metadata) instead of on its '
         'shared stream per replica.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    guarded(section, 'traffic', lambda: _traffic(section, settings))
    guarded(section, 'imports', lambda: _imports(section))


if __name__ == '__main__':
    section_main(new_section, measure)
