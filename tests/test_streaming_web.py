"""Streaming endpoints over HTTP (Server-Sent Events, read with curl and the plait Client) and
WebSocket, through a 3-stage Flow (`pre -> gen -> post`) and a Deployment with an HTTP gateway."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from streaming_executors import Exclaim, Generator, Prompt, Token, Upper

from plait import Client, Deployment, Flow
from plait.errors import ExecutorError, RequestTimeout


@pytest.fixture(scope='module')
def flow():
    f = Flow(protocol=['http', 'websocket'], quiet=True).add(uses=Upper, name='pre') \
        .add(uses=Generator, name='gen').add(uses=Exclaim, name='post')
    with f:
        yield f


def _curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['curl', '-sS', '-N', '-m', '20', *args], capture_output=True, text=True, timeout=30)


def _events(text: str) -> list[tuple[str, object]]:
    """(event, data) of a Server-Sent Events body."""
    out = []
    for block in text.replace('\r\n', '\n').split('\n\n'):
        lines = [line for line in block.split('\n') if line]
        if not lines:
            continue
        event = next(line[7:] for line in lines if line.startswith('event: '))
        data = [line[6:] for line in lines if line.startswith('data: ')]
        out.append((event, json.loads(data[0]) if data else None))
    return out


def test_curl_reads_server_sent_events_with_the_document_in_the_query(flow) -> None:
    done = _curl(f'http://127.0.0.1:{flow.ports[0]}/gen?text=hey')
    assert done.returncode == 0, done.stderr
    events = _events(done.stdout)
    assert [e for e, _ in events] == ['update'] * 5 + ['end']
    assert [d['text'] for _, d in events[:-1]] == [f'HEY-{i}!' for i in range(5)]  # pre once, post per token


def test_a_json_body_carries_the_document_and_parameters(flow) -> None:
    body = json.dumps({'data': {'text': 'b'}, 'parameters': {'n': 2}})
    events = _events(_curl('-X', 'GET', '-H', 'Content-Type: application/json', '-d', body,
                           f'http://127.0.0.1:{flow.ports[0]}/gen').stdout)
    assert events == [('update', events[0][1]), ('update', events[1][1]), ('end', None)]
    assert [events[0][1]['text'], events[1][1]['text']] == ['B-0!', 'B-1!']
    jina_style = _events(_curl('-X', 'GET', '-d', json.dumps({'text': 'c'}),  # the document itself, as Jina's client
                               f'http://127.0.0.1:{flow.ports[0]}/gen').stdout)
    assert [d['text'] for e, d in jina_style if e == 'update'][:1] == ['C-0!']


def test_an_error_mid_stream_is_an_event_the_client_reads(flow) -> None:
    body = json.dumps({'data': {'text': 'e'}, 'parameters': {'n': 4, 'fail_at': 1}})
    events = _events(_curl('-X', 'GET', '-d', body, f'http://127.0.0.1:{flow.ports[0]}/gen').stdout)
    assert [e for e, _ in events] == ['update', 'error']
    status = events[1][1]
    assert status['code'] == 1 and status['exception']['name'] == 'ValueError'
    assert status['exception']['executor'] == 'gen' and 'no token 1' in status['description']


def test_other_routes_keep_their_answers(flow) -> None:
    port = flow.ports[0]
    assert _curl('-o', '/dev/null', '-w', '%{http_code}', f'http://127.0.0.1:{port}/post').stdout == '405'
    assert _curl('-o', '/dev/null', '-w', '%{http_code}', f'http://127.0.0.1:{port}/nothing').stdout == '404'
    assert _curl('-o', '/dev/null', '-w', '%{http_code}', f'http://127.0.0.1:{port}/readyz').stdout == '200'
    bad = _curl('-w', ' %{http_code}', '-X', 'GET', '-d', '{"data": {"text": 5}}', f'http://127.0.0.1:{port}/gen')
    assert bad.stdout.endswith(' 400') and 'text: Input should be a valid string' in bad.stdout, bad.stdout


@pytest.mark.parametrize('protocol', ['http', 'websocket'])
def test_the_client_streams_over_http_and_websocket(flow, protocol) -> None:
    port = flow.ports[0 if protocol == 'http' else 1]
    with Client(port=port, protocol=protocol) as client:
        texts = [d.text for d in client.stream_doc(on='/gen', inputs=Prompt(text='a'), parameters={'n': 3},
                                                   return_type=Token)]
        assert texts == ['A-0!', 'A-1!', 'A-2!']
        with pytest.raises(ExecutorError, match='no token 1') as err:
            list(client.stream_doc(on='/gen', inputs=Prompt(text='a'), parameters={'n': 3, 'fail_at': 1},
                                   return_type=Token))
        assert err.value.executor == 'gen'
        with pytest.raises(RequestTimeout):
            list(client.stream_doc(on='/gen', inputs=Prompt(text='a'), parameters={'n': 30, 'delay': 0.1},
                                   return_type=Token, timeout=0.5))


@pytest.mark.parametrize('protocol', ['http', 'websocket'])
def test_a_client_that_leaves_stops_the_generator(flow, protocol, tmp_path, wait) -> None:
    port = flow.ports[0 if protocol == 'http' else 1]
    closed = tmp_path / 'closed'
    with Client(port=port, protocol=protocol) as client:
        stream = client.stream_doc(on='/gen', inputs=Prompt(text='w'), return_type=Token,
                                   parameters={'n': 5, 'delay': 0.3, 'closed': str(closed)})
        assert [next(stream).text, next(stream).text] == ['W-0!', 'W-1!']
        stream.close()
        took = wait(closed.exists, timeout=5, what="the generator's finally")
    assert took < 1.0, f'the generator ran on for {took:.2f} s after the client left'


def test_curl_hanging_up_stops_the_generator(flow, tmp_path, wait) -> None:
    closed = tmp_path / 'closed'
    body = json.dumps({'data': {'text': 'c'}, 'parameters': {'n': 50, 'delay': 0.2, 'closed': str(closed)}})
    start = time.monotonic()
    done = _curl('-m', '1', '-X', 'GET', '-d', body, f'http://127.0.0.1:{flow.ports[0]}/gen')  # gives up after 1 s
    assert done.returncode == 28 and 'event: update' in done.stdout  # curl's timeout, after some updates
    wait(closed.exists, timeout=5, what="the generator's finally")
    assert time.monotonic() - start < 3


def test_a_deployment_with_an_http_gateway_streams() -> None:
    with Deployment(uses=Generator, protocol='http', quiet=True) as dep:
        events = _events(_curl(f'http://127.0.0.1:{dep.port}/gen?text=d').stdout)
        with Client(port=dep.port, protocol='http') as client:
            texts = [d.text for d in client.stream_doc(on='/gen', inputs=Prompt(text='x'), parameters={'n': 2},
                                                       return_type=Token)]
    assert [d['text'] for e, d in events if e == 'update'] == [f'd-{i}' for i in range(5)]
    assert texts == ['x-0', 'x-1']


def test_openapi_describes_the_streaming_routes(flow) -> None:
    done = _curl(f'http://127.0.0.1:{flow.ports[0]}/openapi.json')
    operation = json.loads(done.stdout)['paths']['/gen']['get']
    assert operation['tags'] == ['Streaming'] and 'text/event-stream' in operation['responses']['200']['content']
    assert [p['name'] for p in operation['parameters']] == ['text']
