"""Streaming endpoints over gRPC, as users meet them: a generator method served by a Deployment
(the client talks to the executor) and inside a Flow (`pre -> gen -> post`, through the
gateway), read with Client.stream_doc (blocking) and AsyncClient.stream_doc; single-document
endpoints; errors, timeouts, a caller leaving early, a slow caller, and drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import pytest
from google.protobuf import empty_pb2, json_format
from streaming_executors import Exclaim, Generator, GeneratorAndSingle, Prompt, Token, Upper

from plait import Client, Deployment, Executor, Flow, requests
from plait.errors import ExecutorError, RequestTimeout
from plait.proto import jina_common_pb2_grpc


@pytest.fixture(scope='module')
def deployment():
    with Deployment(uses=GeneratorAndSingle, quiet=True) as dep:
        yield dep


@pytest.fixture(scope='module')
def flow():
    f = Flow(quiet=True).add(uses=Upper, name='pre').add(uses=Generator, name='gen').add(uses=Exclaim, name='post')
    with f:
        yield f


def _texts(port: int, on: str, text: str, **parameters) -> list[str]:
    with Client(port=port) as client:
        return [d.text for d in client.stream_doc(on=on, inputs=Prompt(text=text), parameters=parameters,
                                                  return_type=Token)]


def test_async_and_sync_generators_stream_from_a_deployment(deployment) -> None:
    assert _texts(deployment.port, '/gen', 'a', n=4) == ['a-0', 'a-1', 'a-2', 'a-3']
    assert _texts(deployment.port, '/sync_gen', 'b') == ['sync-b-0', 'sync-b-1', 'sync-b-2']


def test_each_document_arrives_as_soon_as_it_is_made(deployment) -> None:
    arrivals = []
    start = time.monotonic()
    with Client(port=deployment.port) as client:
        for _ in client.stream_doc(on='/gen', inputs=Prompt(text='t'), parameters={'n': 3, 'delay': 0.4},
                                   return_type=Token):
            arrivals.append(time.monotonic() - start)
    # nothing is held back until the end: the first comes long before the last is made
    assert len(arrivals) == 3 and arrivals[0] < arrivals[2] - 0.5, arrivals


def test_the_async_client_streams(deployment) -> None:
    async def main() -> list[str]:
        client = Client(port=deployment.port, asyncio=True)
        try:
            return [d.text async for d in client.stream_doc(on='/gen', inputs=Prompt(text='z'),
                                                             parameters={'n': 3}, return_type=Token)]
        finally:
            await client.close()

    assert asyncio.run(main()) == ['z-0', 'z-1', 'z-2']


def test_a_flow_streams_through_the_stages_before_and_after_the_generator(flow) -> None:
    # pre upper-cases the prompt once; each token then passes post on its own
    assert _texts(flow.port, '/gen', 'ab', n=3) == ['AB-0!', 'AB-1!', 'AB-2!']


def test_discovery_reports_generators_and_single_document_endpoints(deployment, flow) -> None:
    for port in (deployment.port, flow.port):
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
            reply = jina_common_pb2_grpc.JinaDiscoverEndpointsRPCStub(channel).endpoint_discovery(
                empty_pb2.Empty(), timeout=10)
        schemas = json_format.MessageToDict(reply.schemas)
        assert schemas['/gen']['is_generator'] is True and schemas['/gen']['is_singleton_doc'] is True
        assert schemas['/gen']['input']['name'] == 'Prompt' and schemas['/gen']['output']['name'] == 'Token'
        if port == deployment.port:
            assert schemas['/upper']['is_generator'] is False and schemas['/upper']['is_singleton_doc'] is True


def test_a_single_document_endpoint_is_called_per_document(deployment) -> None:
    from docarray import DocList

    with Client(port=deployment.port) as client:
        docs = client.post('/upper', DocList[Prompt]([Prompt(text='x'), Prompt(text='y')]),
                           return_type=DocList[Prompt])
    assert docs.text == ['X', 'Y']


@pytest.mark.parametrize('where', ['deployment', 'flow'])
def test_a_generator_that_raises_ends_the_stream_with_its_error(where, deployment, flow) -> None:
    port = deployment.port if where == 'deployment' else flow.port
    got = []
    with Client(port=port) as client, pytest.raises(ExecutorError) as err:
        for doc in client.stream_doc(on='/gen', inputs=Prompt(text='e'), parameters={'n': 5, 'fail_at': 2},
                                     return_type=Token):
            got.append(doc.text)
    assert len(got) == 2
    assert err.value.name == 'ValueError' and 'no token 2' in str(err.value)
    assert err.value.executor == ('executor' if where == 'deployment' else 'gen')


def test_wrong_calls_get_clear_errors(deployment) -> None:
    with Client(port=deployment.port) as client:
        with pytest.raises(ExecutorError, match=r"'/upper' .* does not stream .* call it with post"):
            list(client.stream_doc(on='/upper', inputs=Prompt(text='x'), return_type=Token))
        with pytest.raises(ExecutorError, match='Token'):
            list(client.stream_doc(on='/wrong_type', inputs=Prompt(text='x'), return_type=Token))
        with pytest.raises(ExecutorError, match=r"'/gen' .* streams documents .* call it with stream_doc"):
            client.post('/gen', Prompt(text='x'))
        with pytest.raises(TypeError, match='one document'):
            list(client.stream_doc(on='/gen', inputs=[Prompt(text='x')]))


def test_a_generator_taking_a_batch_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r'Bad\.gen: a streaming endpoint .* takes one document `doc`'):
        class Bad(Executor):
            @requests(on='/gen')
            async def gen(self, docs, **kwargs):
                yield docs


@pytest.mark.parametrize('where', ['deployment', 'flow'])
def test_a_timeout_bounds_the_whole_stream(where, deployment, flow) -> None:
    port = deployment.port if where == 'deployment' else flow.port
    with Client(port=port) as client, pytest.raises(RequestTimeout):
        for _ in client.stream_doc(on='/gen', inputs=Prompt(text='t'), parameters={'n': 50, 'delay': 0.1},
                                   return_type=Token, timeout=0.5):
            pass


@pytest.mark.parametrize('where,on', [('deployment', '/gen'), ('deployment', '/sync_gen'), ('flow', '/gen')])
def test_a_caller_that_walks_away_stops_the_generator(where, on, deployment, flow, tmp_path, wait) -> None:
    port = deployment.port if where == 'deployment' else flow.port
    closed = tmp_path / 'closed'
    with Client(port=port) as client:
        stream = client.stream_doc(on=on, inputs=Prompt(text='w'), return_type=Token,
                                   parameters={'n': 5, 'delay': 0.3, 'closed': str(closed)})
        got = [next(stream).text, next(stream).text]
        left = time.monotonic()
        stream.close()  # the caller stops iterating after 2 of 5
        took = wait(closed.exists, timeout=5, what="the generator's finally")
    assert len(got) == 2 and time.monotonic() - left < 5
    assert took < 1.0, f'the generator ran on for {took:.2f} s after the caller left'


@pytest.mark.parametrize('where', ['deployment', 'flow'])
def test_a_slow_caller_slows_the_generator(where, deployment, flow, tmp_path, wait) -> None:
    """Back-pressure: 400 documents of 100 kB (40 MB) are offered; while the caller has read only
    20 and pauses, the generator stays a bounded distance ahead instead of making them all.
    (HTTP/2 flow control counts bytes, and every stage here keeps the 100 kB, so its windows fill.)"""
    port = deployment.port if where == 'deployment' else flow.port
    progress = tmp_path / 'progress'
    with Client(port=port) as client:
        stream = client.stream_doc(on='/gen', inputs=Prompt(text='s'), return_type=Token,
                                   parameters={'n': 400, 'size': 100_000, 'progress': str(progress)})
        for _ in range(20):
            next(stream)
        time.sleep(1.5)  # the caller pauses; a generator that is not held back would finish meanwhile
        made = int(progress.read_text())
        rest = sum(1 for _ in stream)
    assert 20 + rest == 400
    assert made < 250, f'the generator made {made} of 400 documents while the caller had read 20'


def test_sigterm_lets_an_open_stream_finish(tmp_path) -> None:
    with Deployment(uses=Generator, quiet=True, restart=False) as dep:
        pid = dep._group.processes[0].pid
        got = []
        with Client(port=dep.port) as client:
            for doc in client.stream_doc(on='/gen', inputs=Prompt(text='d'), parameters={'n': 8, 'delay': 0.15},
                                         return_type=Token):
                got.append(doc.text)
                if len(got) == 2:
                    os.kill(pid, signal.SIGTERM)  # drains: the open stream goes on to its end
    assert got == [f'd-{i}' for i in range(8)]


def test_streaming_is_refused_where_it_is_not_defined(tmp_path) -> None:
    f = Flow(quiet=True).add(uses=Generator, name='a').add(uses=Upper, name='b', needs='gateway') \
        .add(name='c', needs=['a', 'b'])
    with f:
        with Client(port=f.port) as client, pytest.raises(ExecutorError, match='one chain'):
            list(client.stream_doc(on='/gen', inputs=Prompt(text='x'), return_type=Token))


def test_a_temporary_client_streams_to_the_end(deployment) -> None:
    # nothing but the iterator refers to the Client: it must live until the stream ends
    texts = [d.text for d in Client(port=deployment.port).stream_doc(on='/gen', inputs=Prompt(text='t'),
                                                                      parameters={'n': 3}, return_type=Token)]
    assert texts == ['t-0', 't-1', 't-2']


def test_monitoring_counts_the_streamed_documents() -> None:
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    from plait.wire.ports import free_port

    port = free_port()
    with Deployment(uses=Generator, monitoring=True, port_monitoring=port, quiet=True) as dep:
        assert _texts(dep.port, '/gen', 'm', n=4) == [f'm-{i}' for i in range(4)]
        text = urlopen(f'http://127.0.0.1:{port}/', timeout=10).read().decode()
    counted = [s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == 'plait_stream_items_total' and s.labels.get('executor_endpoint') == '/gen']
    assert counted == [4.0], text[:2000]
