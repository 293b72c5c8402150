"""The client as Jina documents it: lazy inputs (a generator is read request by request, as
answers come back), retries for transient failures only (`max_attempts`, `initial_backoff`,
`max_backoff`, `backoff_multiplier`), and gRPC `metadata=` / HTTP and WebSocket `headers=`
passed through to the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from worker_executors import Appender, SlowExecutor

from plait import Client, Deployment, Document, Executor, requests
from plait.errors import ExecutorError, InternalNetworkError, UnknownOption
from plait.proto import jina_data_pb2, jina_data_pb2_grpc
from plait.wire.ports import free_port

PREFETCH = 3
REQUEST_SIZE = 10


class CountingInputs:
    """Documents from a generator, counting how many were taken."""

    def __init__(self, total: int):
        self.total = total
        self.taken = 0

    def __call__(self) -> Iterator[Document]:
        for i in range(self.total):
            self.taken += 1
            yield Document(text=str(i))


@pytest.fixture(scope='module')
def three_protocols() -> Iterator[list[int]]:
    ports = [free_port(), free_port(), free_port()]
    with Deployment(uses=Appender, protocol=['grpc', 'http', 'websocket'], port=ports, quiet=True):
        yield ports


@pytest.mark.parametrize('index, protocol', [(0, 'grpc'), (1, 'http'), (2, 'websocket')])
def test_generator_inputs_are_read_as_answers_come(three_protocols: list[int], index: int, protocol: str) -> None:
    inputs = CountingInputs(2000)
    seen: list[tuple[int, int]] = []  # (responses so far, documents taken from the generator then)

    def on_done(response: Any) -> None:
        seen.append((len(seen) + 1, inputs.taken))

    with Client(port=three_protocols[index], protocol=protocol) as client:
        result = client.post('/', inputs, request_size=REQUEST_SIZE, prefetch=PREFETCH, on_done=on_done)
    assert result is None  # with on_done, responses go to the callback only (as in Jina)
    assert len(seen) == 200 and inputs.taken == 2000
    # never more than `prefetch` requests (and the two the client looks ahead) beyond those answered
    assert all(taken <= (answered + PREFETCH + 2) * REQUEST_SIZE for answered, taken in seen), seen[:5]


def test_async_client_reads_a_generator_lazily_too(three_protocols: list[int]) -> None:
    inputs = CountingInputs(500)

    async def main() -> list[int]:
        client = Client(port=three_protocols[0], asyncio=True)
        taken = []
        async for _ in client.post('/', inputs, request_size=REQUEST_SIZE, prefetch=PREFETCH):
            taken.append(inputs.taken)
        await client.close()
        return taken

    taken = asyncio.run(main())
    assert len(taken) == 50
    assert all(t <= (i + 1 + PREFETCH + 2) * REQUEST_SIZE for i, t in enumerate(taken))


def test_retries_wait_for_a_server_that_comes_up(port: int) -> None:
    with Client(port=port) as client:
        with pytest.raises(ConnectionError):
            client.post('/', Document())  # max_attempts=1: fails at once
    dep = Deployment(uses=Appender, port=port, quiet=True)
    starter = threading.Timer(1.0, dep.start)
    starter.start()
    try:
        with Client(port=port) as client:
            docs = client.post('/', [Document(text='a')], max_attempts=60, initial_backoff=0.2, max_backoff=0.5,
                               backoff_multiplier=2)
            assert docs.texts == ['a', 'foo was called']
    finally:
        starter.join()
        dep.close()


class CountingFailure(Executor):
    def __init__(self, path: str = '', **kwargs):
        super().__init__(**kwargs)
        self.path = path

    @requests
    def fail(self, docs, **kwargs):
        with open(self.path, 'a') as f:
            f.write('called\n')
        raise ValueError('not transient')


def test_an_executor_error_is_not_retried(tmp_path: Path, port: int) -> None:
    calls = tmp_path / 'calls'
    with Deployment(uses=CountingFailure, uses_with={'path': str(calls)}, port=port, quiet=True):
        with Client(port=port) as client:
            with pytest.raises(ExecutorError, match='not transient'):
                client.post('/', Document(), max_attempts=5, initial_backoff=0.01)
    assert calls.read_text() == 'called\n'


def test_a_broken_stream_resends_only_the_unanswered_requests(port: int) -> None:
    """The replica is killed mid-stream and restarted by its supervisor: with retries, every
    request is answered exactly once and in order."""
    with Deployment(uses=SlowExecutor, uses_with={'seconds': 0.05}, port=port, quiet=True) as dep:
        pid = dep.process_of('executor/rep-0').pid
        texts: list[str] = []

        def on_done(response: Any) -> None:
            texts.extend(response.docs.texts)
            if len(texts) == 5:
                os.kill(pid, signal.SIGKILL)

        with Client(port=port) as client:
            client.post('/', [Document(text=str(i)) for i in range(40)], request_size=1, prefetch=2,
                        on_done=on_done, max_attempts=100, initial_backoff=0.2, max_backoff=0.5)
        assert texts == [str(i) for i in range(40)]
        assert dep.process_of('executor/rep-0').pid != pid


def test_without_retries_a_broken_stream_fails(port: int) -> None:
    with Deployment(uses=SlowExecutor, uses_with={'seconds': 0.05}, port=port, quiet=True, restart=False) as dep:
        pid = dep.process_of('executor/rep-0').pid

        def on_done(response: Any) -> None:
            os.kill(pid, signal.SIGKILL)

        with Client(port=port) as client:
            with pytest.raises(InternalNetworkError):
                client.post('/', [Document() for _ in range(10)], request_size=1, prefetch=2, on_done=on_done)


# -- metadata and headers reach the server ---------------------------------------------------
class _Recorder(jina_data_pb2_grpc.JinaSingleDataRequestRPCServicer, jina_data_pb2_grpc.JinaRPCServicer):
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def process_single_data(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.metadata.append(dict(context.invocation_metadata()))
        return request

    def Call(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        self.metadata.append(dict(context.invocation_metadata()))
        for request in request_iterator:
            yield request


def test_grpc_metadata_goes_with_the_calls(port: int) -> None:
    recorder = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    jina_data_pb2_grpc.add_JinaSingleDataRequestRPCServicer_to_server(recorder, server)
    jina_data_pb2_grpc.add_JinaRPCServicer_to_server(recorder, server)
    server.add_insecure_port(f'127.0.0.1:{port}')
    server.start()
    try:
        with Client(port=port) as client:
            client.post('/', Document(), metadata=[('authorization', 'Bearer one')])
            client.post('/', [Document(), Document()], request_size=1, metadata=(('x-who', 'two'),))
        assert recorder.metadata[0]['authorization'] == 'Bearer one'
        assert recorder.metadata[1]['x-who'] == 'two'
        with Client(port=port) as client, pytest.raises(UnknownOption, match="headers= go with HTTP"):
            client.post('/', Document(), headers={'a': 'b'})
    finally:
        server.stop(0)


def test_http_headers_go_with_each_request(port: int) -> None:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            seen.append(self.headers.get('Authorization', ''))
            body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
            answer = json.dumps({'header': body['header'], 'data': [], 'parameters': {}}).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(('127.0.0.1', port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(port=port, protocol='http') as client:
            client.post('/', [Document(), Document()], request_size=1, headers={'Authorization': 'Bearer h'})
            with pytest.raises(UnknownOption, match='metadata= is gRPC call metadata'):
                client.post('/', Document(), metadata=[('a', 'b')])
        assert seen == ['Bearer h', 'Bearer h']
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_websocket_headers_go_with_the_handshake(port: int) -> None:
    from websockets.sync.server import serve

    seen: list[str] = []

    def handler(connection: Any) -> None:
        seen.append(connection.request.headers.get('Authorization', ''))
        for message in connection:
            if isinstance(message, bytes) and len(message) > 1:
                connection.send(jina_data_pb2.DataRequestProto.FromString(message).SerializeToString())

    server = serve(handler, '127.0.0.1', port, subprotocols=['bytes'])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(port=port, protocol='websocket') as client:
            client.post('/', [Document(), Document()], request_size=1, headers={'Authorization': 'Bearer w'})
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ['Bearer w']
    finally:
        server.shutdown()
        thread.join(timeout=5)
