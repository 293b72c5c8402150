"""OpenTelemetry tracing (tracing=True): a real OTLP/gRPC receiver (opentelemetry-proto's
TraceService) started here receives one connected trace per request across the gateway and
two executors, continuing the caller's own trace (W3C traceparent in gRPC metadata and HTTP
headers); executors get `self.tracer` and `tracing_context`; an unreachable collector is a
log line and never fails a request; metrics=True pushes the metrics over OTLP."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from plait import Document, DocumentArray, Executor, Flow, requests
from plait.proto import jina_data_pb2, jina_data_pb2_grpc
from plait.wire.ports import free_port

TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
CALLER_SPAN = '00f067aa0ba902b7'
TRACEPARENT = f'00-{TRACE_ID}-{CALLER_SPAN}-01'


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace collector: keeps every span it is sent, with its service name."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = next(a.value.string_value for a in resource_spans.resource.attributes
                               if a.key == 'service.name')
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append({
                            'service': service, 'name': span.name, 'trace_id': span.trace_id.hex(),
                            'span_id': span.span_id.hex(), 'parent': span.parent_span_id.hex(),
                            'kind': span.kind, 'error': span.status.code == 2,
                            'attributes': {a.key: a.value.string_value for a in span.attributes}})
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s['trace_id'] == trace_id]


@pytest.fixture
def collector():
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    yield receiver, port
    server.stop(0)


class Tokenizer(Executor):
    @requests
    def tokenize(self, docs: DocumentArray, tracing_context: Any = None, **kwargs: Any) -> None:
        with self.tracer.start_as_current_span('split words', context=tracing_context):
            for d in docs:
                d.tags['words'] = len((d.text or '').split())


class Judge(Executor):
    @requests(on='/judge')
    def judge(self, docs: DocumentArray, **kwargs: Any) -> None:
        if any(d.text == 'bad' for d in docs):
            raise ValueError('a bad document')


def post_with_traceparent(port: int, endpoint: str, text: str) -> jina_data_pb2.DataRequestProto:
    """What an instrumented gRPC caller sends: the request, and its trace context as metadata."""
    request = jina_data_pb2.DataRequestProto()
    request.header.exec_endpoint = endpoint
    request.header.request_id = 'traced-' + text
    request.data.docs.CopyFrom(DocumentArray([Document(text=text)]).to_protobuf())
    with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
        stub = jina_data_pb2_grpc.JinaSingleDataRequestRPCStub(channel)
        return stub.process_single_data(request, metadata=(('traceparent', TRACEPARENT),), timeout=30)


def test_one_connected_trace_across_gateway_and_two_executors(collector):
    receiver, port = collector
    flow = (Flow(protocol=['grpc', 'http'], tracing=True, traces_exporter_host='127.0.0.1',
                 traces_exporter_port=port, quiet=True)
            .add(name='tokenizer', uses=Tokenizer).add(name='judge', uses=Judge))
    with flow:
        response = post_with_traceparent(flow.ports[0], '/judge', 'two words')
        assert response.header.status.code == 0
    spans = receiver.of_trace(TRACE_ID)   # every process flushed its spans when it stopped
    by_name = {s['name']: s for s in spans}
    gateway = by_name['gateway /judge']
    assert gateway['service'] == 'gateway' and gateway['parent'] == CALLER_SPAN   # the caller's trace goes on
    for deployment, endpoint in (('tokenizer', '__default__'), ('judge', '/judge')):
        call = by_name[f'{deployment} /judge']                 # the gateway's call to the deployment
        assert call['service'] == 'gateway' and call['parent'] == gateway['span_id']
        assert call['attributes']['plait.executor'] == deployment
        served = by_name[f'{deployment}/rep-0 {endpoint}']     # the replica serving it
        assert served['service'] == f'{deployment}/rep-0' and served['parent'] == call['span_id']
        assert served['attributes']['plait.replica'] == f'{deployment}/rep-0'
        assert served['attributes']['plait.status'] == 'SUCCESS'
        method = by_name[endpoint]                             # the Executor's method
        assert method['service'] == f'{deployment}/rep-0' and method['parent'] == served['span_id']
    own = by_name['split words']   # a span the Executor made itself with self.tracer and tracing_context
    assert own['service'] == 'tokenizer/rep-0' and own['parent'] == by_name['__default__']['span_id']
    assert len(spans) == 8


def test_http_caller_trace_and_errors_are_marked(collector):
    receiver, port = collector
    flow = (Flow(protocol='http', tracing=True, traces_exporter_host='127.0.0.1', traces_exporter_port=port,
                 quiet=True).add(name='judge', uses=Judge))
    with flow:
        answer = httpx.post(f'http://127.0.0.1:{flow.port}/post', headers={'traceparent': TRACEPARENT},
                            json={'data': [{'text': 'bad'}], 'execEndpoint': '/judge'}, timeout=30)
        assert answer.status_code == 500
    spans = {s['name']: s for s in receiver.of_trace(TRACE_ID)}
    assert spans['gateway /judge']['parent'] == CALLER_SPAN and spans['gateway /judge']['error']
    assert spans['judge/rep-0 /judge']['error'] and spans['/judge']['error']
    assert spans['judge/rep-0 /judge']['attributes']['plait.status'] == 'ERROR'


def test_unreachable_collector_is_a_log_line_and_requests_are_served():
    closed = free_port()   # nothing listens there
    with Flow(tracing=True, traces_exporter_host='127.0.0.1', traces_exporter_port=closed, quiet=True) \
            .add(uses=Tokenizer) as flow:
        docs = flow.post('/', DocumentArray([Document(text='a b c')]))
        assert docs[0].tags['words'] == 3
        log = '\n'.join(flow.process_of('executor0/rep-0').tail)
        gateway_log = '\n'.join(flow.process_of('gateway').tail)
    assert f'trace collector at 127.0.0.1:{closed} is unreachable' in log
    assert f'trace collector at 127.0.0.1:{closed} is unreachable' in gateway_log


def test_tracer_is_a_no_op_without_tracing():
    executor = Tokenizer()
    docs = DocumentArray([Document(text='x y')])
    executor.tokenize(docs)
    assert docs[0].tags['words'] == 2
    assert executor.meter is None and executor.tracer_provider is None


def test_client_spans_and_the_callers_own_trace(collector):
    from opentelemetry.sdk.trace import TracerProvider

    from plait import Client

    receiver, port = collector
    with Flow(tracing=True, traces_exporter_host='127.0.0.1', traces_exporter_port=port, quiet=True) \
            .add(name='tokenizer', uses=Tokenizer) as flow:
        # the caller's own span (its process uses OpenTelemetry): a plain Client continues it
        caller = TracerProvider().get_tracer('the caller')
        with caller.start_as_current_span('caller work') as mine:
            Client(port=flow.port).post('/', DocumentArray([Document(text='one')]))
        own_trace = format(mine.get_span_context().trace_id, '032x')
        own_span = format(mine.get_span_context().span_id, '016x')
        # Client(tracing=True): each post is a `client <endpoint>` span, one request or a stream of them
        client = Client(port=flow.port, tracing=True, traces_exporter_host='127.0.0.1', traces_exporter_port=port)
        client.post('/single', DocumentArray([Document(text='a')]))
        client.post('/stream', DocumentArray([Document(text='b'), Document(text='c')]), request_size=1)
        client.close()   # sends the client's queued spans
    gateway = {s['name']: s for s in receiver.of_trace(own_trace)}['gateway /']
    assert gateway['parent'] == own_span
    for endpoint, count in (('/single', 1), ('/stream', 2)):
        (span,) = [s for s in receiver.spans if s['name'] == f'client {endpoint}']
        assert span['service'] == 'client'
        trace = receiver.of_trace(span['trace_id'])
        gateways = [s for s in trace if s['name'] == f'gateway {endpoint}']
        assert len(gateways) == count and all(g['parent'] == span['span_id'] for g in gateways)
        assert len([s for s in trace if s['service'] == 'tokenizer/rep-0']) == 3 * count


class MetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """An OTLP metrics collector: the last value of every sum, by (service, metric name)."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str], float] = {}
        self.names: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            for resource_metrics in request.resource_metrics:
                service = next(a.value.string_value for a in resource_metrics.resource.attributes
                               if a.key == 'service.name')
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        self.names.add((service, metric.name))
                        if metric.HasField('sum'):
                            self.sums[(service, metric.name)] = sum(p.as_int or p.as_double
                                                                    for p in metric.sum.data_points)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def test_metrics_are_pushed_over_otlp():
    receiver = MetricsReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    try:
        with Flow(metrics=True, metrics_exporter_host='127.0.0.1', metrics_exporter_port=port, quiet=True) \
                .add(name='judge', uses=Judge) as flow:
            for _ in range(3):
                flow.post('/judge', DocumentArray([Document(text='fine')]))
        # every process pushed its final values when it stopped
        assert receiver.sums[('gateway', 'jina_successful_requests')] == 3
        assert receiver.sums[('judge/rep-0', 'jina_successful_requests')] == 3
        assert receiver.sums[('judge/rep-0', 'jina_document_processed')] == 3
        assert {('gateway', 'jina_receiving_request_seconds'), ('gateway', 'jina_sending_request_seconds'),
                ('judge/rep-0', 'jina_process_request_seconds')} <= receiver.names
    finally:
        server.stop(0)
