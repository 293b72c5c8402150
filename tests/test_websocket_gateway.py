"""The WebSocket gateway with real processes: websocat streaming JSON requests on one
connection, the protobuf stream of Jina's own client (subprotocol `bytes`, end-of-input
`b'\\x00'`), the plait Client, errors answered per request, `GET /`, `/dry_run` (also after
`kill -9` of the executor) and `/status` over curl, and the seed's FooExecutor snippet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import kill9, run_script, wait_until
from test_http_gateway import FOO_SNIPPET, curl, curl_json

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.proto import jina_data_pb2

WEBSOCAT = str(Path(sys.executable).parent / 'websocat')
SUCCESS = '{"code":0,"description":"","exception":null}'


class Echo(Executor):
    @requests(on='/')
    def echo(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        for d in docs:
            d.tags['seen'] = parameters.get('k', True)

    @requests(on='/boom')
    def boom(self, docs: DocumentArray, **kwargs) -> None:
        raise RuntimeError('boom on purpose')


@pytest.fixture(scope='module')
def flow():
    with Flow(protocol='websocket', quiet=True).add(uses=Echo) as f:
        yield f


def websocat(url: str, lines: list[str], timeout: float = 20) -> list[Any]:
    """Send `lines` as text messages on one connection (-n: keep reading after stdin ends);
    the JSON messages received."""
    done = subprocess.run([WEBSOCAT, '-n', url], input=''.join(line + '\n' for line in lines),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def request(request_id: str, text: str, **extra: Any) -> str:
    return json.dumps({'header': {'request_id': request_id}, 'data': [{'text': text}], **extra})


def test_websocat_streams_requests_and_gets_answers_in_order(flow: Flow) -> None:
    url = f'ws://127.0.0.1:{flow.port}/'
    answers = websocat(url, [request(f'r{i}', f'doc{i}', parameters={'k': i}) for i in range(5)] + ['{}'])
    assert [a['header']['request_id'] for a in answers] == [f'r{i}' for i in range(5)]
    assert [a['data'][0]['text'] for a in answers] == [f'doc{i}' for i in range(5)]
    assert [a['data'][0]['tags']['seen'] for a in answers] == [0, 1, 2, 3, 4]


def test_errors_are_answered_per_message_and_the_connection_goes_on(flow: Flow) -> None:
    url = f'ws://127.0.0.1:{flow.port}/'
    answers = websocat(url, ['not json', request('a', 'x', exec_endpoint='/nowhere'),
                             request('b', 'y', exec_endpoint='/boom'), json.dumps({'data': 'bad'}),
                             request('c', 'z'), '{}'])
    statuses = [a['header'].get('status') for a in answers]
    assert 'malformed JSON' in statuses[0]['description']
    assert "'/nowhere'" in statuses[1]['description'] and statuses[1]['exception']['name'] == 'BadRequest'
    assert statuses[2]['exception']['name'] == 'RuntimeError' and statuses[2]['exception']['executor'] == 'executor0'
    assert 'data' in statuses[3]['description']
    assert statuses[4] is None and answers[4]['data'][0]['text'] == 'z'


def test_http_routes_on_the_websocket_port(flow: Flow) -> None:
    base = f'http://localhost:{flow.port}'
    assert curl(base) == (200, '{}')
    assert curl(f'{base}/dry_run') == (200, SUCCESS)
    code, info = curl_json(f'{base}/status')
    assert code == 200 and info['jina']['plait']
    assert curl(f'{base}/readyz')[0] == 200
    done = subprocess.run([WEBSOCAT, '-n', f'ws://127.0.0.1:{flow.port}/dry_run'], input='', capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.stdout.strip() == SUCCESS


def test_protobuf_stream_as_jinas_client_sends_it(flow: Flow) -> None:
    from websockets.asyncio.client import connect

    async def exchange() -> tuple[list[Any], Any, str]:
        async with connect(f'ws://127.0.0.1:{flow.port}/', subprotocols=['bytes'], proxy=None) as ws:
            for i in range(3):
                req = jina_data_pb2.DataRequestProto()
                req.header.request_id = f'p{i}'
                req.header.exec_endpoint = '/'
                req.data.docs.docs.add().data['text'].text = f'proto{i}'
                await ws.send(req.SerializeToString())
            await ws.send(bytes(True))  # end of input
            answers = [jina_data_pb2.DataRequestProto.FromString(await ws.recv()) for _ in range(3)]
            await ws.wait_closed()
            return answers, ws.close_code, ws.subprotocol

    answers, close_code, subprotocol = asyncio.run(exchange())
    assert subprotocol == 'bytes' and close_code == 1000
    assert [a.header.request_id for a in answers] == ['p0', 'p1', 'p2']
    assert [a.data.docs.docs[0].data['text'].text for a in answers] == ['proto0', 'proto1', 'proto2']


def test_client_over_websocket(flow: Flow) -> None:
    with Client(port=flow.port, protocol='websocket') as client:
        docs = client.post('/', [Document(text=str(i)) for i in range(30)], request_size=2, prefetch=3,
                           parameters={'k': 'v'})
        assert [d.text for d in docs] == [str(i) for i in range(30)]
        assert all(d.tags == {'seen': 'v'} for d in docs)
        assert client.is_flow_ready() and client.dry_run() and client.status()['jina']['plait']
        from plait.errors import ExecutorError
        with pytest.raises(ExecutorError, match='boom on purpose'):
            client.post('/boom', [Document(text='x')])
        assert client.post('/', [Document(text='after')]).texts == ['after']


def _connections_to(port: int) -> int:
    """Established TCP connections of this process to 127.0.0.1:`port`."""
    import os
    mine = set()
    for fd in os.listdir('/proc/self/fd'):
        with contextlib.suppress(OSError):
            link = os.readlink(f'/proc/self/fd/{fd}')
            if link.startswith('socket:['):
                mine.add(link[8:-1])
    count = 0
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[2].endswith(f':{port:04X}') and fields[3] == '01' and fields[9] in mine:
                count += 1
    return count


def test_the_client_keeps_one_connection_across_posts_and_survives_a_gateway_restart() -> None:
    with Flow(protocol='websocket', quiet=True).add(uses=Echo) as f, \
            Client(port=f.port, protocol='websocket') as client:
        for i in range(5):
            assert client.post('/', [Document(text=str(i))]).texts == [str(i)]
        assert _connections_to(f.port) == 1  # one handshake, not one per post
        old_pid = f.process_of('gateway').pid
        kill9(old_pid)  # the kept connection dies with it
        assert wait_until(lambda: f.process_of('gateway').pid != old_pid and f.is_flow_ready(timeout=1),
                          timeout=30) is not None
        assert client.post('/', [Document(text='after')]).texts == ['after']  # a new connection, no error
        kept = _connections_to(f.port)  # that one (and the readiness probe's keep-alive)
        for i in range(3):
            assert client.post('/', [Document(text=str(i))]).texts == [str(i)]
        assert _connections_to(f.port) == kept


def test_dry_run_after_kill_9_names_the_executor() -> None:
    with Flow(protocol='websocket', quiet=True, restart=False).add() as f:
        base = f'http://127.0.0.1:{f.port}'
        address = f.gateway_config().deployments[0].addresses()[0]
        kill9(f.process_of('executor0/rep-0').pid)
        answers: list[Any] = []
        assert wait_until(lambda: answers.append(curl_json(f'{base}/dry_run')) or answers[-1][1]['code'] == 1,
                          timeout=5) is not None
        code, failure = answers[-1]
        assert code == 200 and failure['exception']['name'] == 'InternalNetworkError'
        assert f'deployment executor0 at address(es) {{{address!r}}}' in failure['description']
        code, readyz = curl_json(f'{base}/readyz')
        assert code == 503 and readyz['not_ready'][0]['address'] == address
        ws_failure = websocat(f'ws://127.0.0.1:{f.port}/dry_run', [])
        assert ws_failure[0]['code'] == 1 and ws_failure[0]['description'] == failure['description']
        with Client(port=f.port, protocol='websocket') as client:
            assert client.is_flow_ready() is False and client.dry_run() is False
            from plait.errors import ExecutorError
            with pytest.raises(ExecutorError, match='may be down'):
                client.post('/', [Document(text='x')])


def test_seed_foo_executor_over_websocket_prints_foo_was_called() -> None:
    done = run_script(FOO_SNIPPET.replace('{protocol}', 'websocket'))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "['foo was called']" in done.stdout.splitlines(), done.stdout
