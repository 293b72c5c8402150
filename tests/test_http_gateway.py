"""The HTTP gateway with real processes, driven by curl as the seeds do: `/`, `/livez`,
`/readyz`, `/dry_run` (also after `kill -9` of the executor), `/status`, `/post`, CRUD,
exposed endpoints, typed documents, every error mapping (400/404/413/422/500/503/504), CORS,
metrics, the seed YAML examples and the seed's FooExecutor snippet."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from typing import Any

import pytest
from docarray import BaseDoc, DocList
from docarray.typing import NdArray
from flow_helpers import Script, kill9, run_script, wait_until

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.clients.http import HttpTransport

DOWN = ("failed to connect to all addresses |Gateway: Communication error with deployment executor0 "
        "at address(es) {'127.0.0.1:12346'}. Head or worker(s) may be down.")
POST_BODY = {'data': [{'text': 'hello'}], 'execEndpoint': '/', 'parameters': {}, 'targetExecutor': ''}


def curl(url: str, *args: str, timeout: float = 20) -> tuple[int, str]:
    """(HTTP status, body) of `curl -s URL ARGS`."""
    done = subprocess.run(['curl', '-s', '-S', '-w', '\n%{http_code}', *args, url], capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f'curl {url} failed: {done.stderr}'
    body, _, code = done.stdout.rpartition('\n')
    return int(code), body


def curl_json(url: str, *args: str) -> tuple[int, Any]:
    code, body = curl(url, *args)
    return code, json.loads(body)


def post(url: str, body: Any, method: str = 'POST', raw: str | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body)
    code, text = curl(url, '-X', method, '-H', 'Content-Type: application/json', '--data-binary', data)
    return code, json.loads(text)


class MyDoc(BaseDoc):
    title: str
    n: int = 3
    vec: NdArray | None = None


def stamp(docs: DocumentArray, endpoint: str, parameters: dict) -> None:
    for d in docs:
        d.tags['endpoint'] = endpoint
        d.tags['param'] = parameters.get('p')
    docs.append(Document(text='main was called'))


class Main(Executor):
    @requests(on='/')
    def root(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/', parameters)

    @requests(on='/index')
    def index(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/index', parameters)

    @requests(on='/search')
    def search(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/search', parameters)

    @requests(on='/update')
    def update(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/update', parameters)

    @requests(on='/delete')
    def delete(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/delete', parameters)

    @requests(on='/foo')
    def foo(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        stamp(docs, '/foo', parameters)

    @requests(on='/typed')
    def typed(self, docs: DocList[MyDoc], **kwargs) -> DocList[MyDoc]:
        for d in docs:
            d.title = d.title.upper()
            d.n += 1
        return docs

    @requests(on='/boom')
    def boom(self, docs: DocumentArray, **kwargs) -> None:
        raise ValueError('boom on purpose')


class Slow(Executor):
    @requests(on='/slow')
    def slow(self, docs: DocumentArray, **kwargs) -> None:
        time.sleep(3)


@pytest.fixture(scope='module')
def flow():
    f = (Flow(protocol='http', quiet=True, max_body_bytes=20000, monitoring=True)
         .add(uses=Main).add(uses=Slow, timeout_send=300))
    f.expose_endpoint('/foo', summary='my endpoint', tags=['fine-tuning'], methods=['PUT'])
    with f:
        yield f


def url_of(f: Flow, path: str) -> str:
    return f'http://127.0.0.1:{f.port}{path}'


# -- the seeds' scenario, as written ---------------------------------------------------------

SEED_FLOW = """
from plait import Flow
import os

PROTOCOL = 'http'  # it could also be http or websocket

os.environ['PLAIT_LOG_LEVEL'] = 'DEBUG'  # this way we can check what is the PID of the Executor

with Flow(protocol=PROTOCOL, port=12345).add(port=12346) as f:
    f.block()
"""


def test_seed_http_health_dry_run_status_and_kill_9() -> None:
    script = Script(SEED_FLOW)
    try:
        script.wait_for_line('is ready to serve', timeout=90)
        line = script.wait_for_line('executor0/rep-0@', timeout=5)
        executor_pid = int(re.search(r'executor0/rep-0@(\d+)', line).group(1))

        assert curl('http://localhost:12345') == (200, '{}')
        assert curl('http://localhost:12345/livez')[0] == 200
        assert curl_json('http://localhost:12345/readyz') == (200, {'ready': True, 'not_ready': []})
        assert curl('http://localhost:12345/dry_run') == (200, '{"code":0,"description":"","exception":null}')
        code, info = curl_json('http://localhost:12345/status')
        assert code == 200 and set(info) == {'jina', 'envs'}
        assert info['envs']['PLAIT_LOG_LEVEL'] == 'DEBUG' and info['jina']['session-id']
        code, answer = post('http://localhost:12345/post', POST_BODY)
        assert code == 200 and [d['text'] for d in answer['data']] == ['hello']

        kill9(executor_pid)  # seed: kill -9 $EXECUTOR_PID
        bodies: list[Any] = []
        assert wait_until(lambda: bodies.append(curl_json('http://localhost:12345/dry_run')) or
                          bodies[-1][1]['code'] == 1, timeout=5) is not None, bodies[-1:]
        code, failure = bodies[-1]
        assert code == 200  # dry_run is always HTTP 200: the body's code tells
        assert list(failure) == ['code', 'description', 'exception']
        assert failure['description'] == DOWN
        exception = failure['exception']
        assert list(exception) == ['name', 'args', 'stacks', 'executor']
        assert (exception['name'], exception['args'], exception['executor']) == ('InternalNetworkError', [DOWN], '')
        assert exception['stacks'][0].startswith('Traceback') and DOWN in exception['stacks'][-1]

        code, readyz = curl_json('http://localhost:12345/readyz')
        assert code == 503 and readyz['ready'] is False
        assert readyz['not_ready'][0]['deployment'] == 'executor0'
        assert readyz['not_ready'][0]['replica'] == 0
        assert readyz['not_ready'][0]['address'] == '127.0.0.1:12346'
        assert readyz['not_ready'][0]['reason']
        assert curl('http://localhost:12345') == (200, '{}')  # the gateway itself is alive
    finally:
        script.close()


FOO_SNIPPET = """
from plait import Document, DocumentArray
from plait import Client, Executor, Flow, requests


class FooExecutor(Executor):
    @requests
    def foo(self, docs: DocumentArray, **kwargs):
        docs.append(Document(text='foo was called'))


f = Flow(protocol='{protocol}', port=12345).add(uses=FooExecutor)
with f:
    client = Client(port=12345, protocol='{protocol}')
    docs = client.post(on='/')
    print(docs.texts)
"""


def test_seed_foo_executor_over_http_prints_foo_was_called() -> None:
    done = run_script(FOO_SNIPPET.replace('{protocol}', 'http'))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "['foo was called']" in done.stdout.splitlines(), done.stdout


# -- data routes -----------------------------------------------------------------------------

def test_post_with_camel_or_snake_keys_and_docs_object(flow: Flow) -> None:
    code, answer = post(url_of(flow, '/post'), {'data': [{'text': 'hello'}], 'execEndpoint': '/index',
                                                'parameters': {'p': 7}, 'targetExecutor': ''})
    assert code == 200
    assert set(answer) == {'header', 'parameters', 'routes', 'data'}
    assert answer['header']['exec_endpoint'] == '/index' and answer['header']['request_id']
    assert [r['executor'] for r in answer['routes']] == ['gateway', 'executor0']
    assert [d['text'] for d in answer['data']] == ['hello', 'main was called']
    assert answer['data'][0]['tags'] == {'endpoint': '/index', 'param': 7}

    code, answer = post(url_of(flow, '/post'), {'data': {'docs': [{'text': 'a'}, {'text': 'b', 'id': 'b1'}]},
                                                'exec_endpoint': '/search', 'target_executor': 'executor0'})
    assert code == 200
    assert [d['text'] for d in answer['data']] == ['a', 'b', 'main was called']
    assert answer['data'][1]['id'] == 'b1'


@pytest.mark.parametrize('path, method', [('/index', 'POST'), ('/search', 'POST'), ('/update', 'PUT'),
                                          ('/delete', 'DELETE')])
def test_crud_routes_post_to_their_endpoint(flow: Flow, path: str, method: str) -> None:
    code, answer = post(url_of(flow, path), {'data': [{'text': 'x'}], 'parameters': {'p': 'q'}}, method=method)
    assert code == 200, answer
    assert answer['data'][0]['tags'] == {'endpoint': path, 'param': 'q'}


def test_exposed_endpoint_with_its_method_summary_and_tags(flow: Flow) -> None:
    code, answer = post(url_of(flow, '/foo'), {'data': [{'text': 'x'}]}, method='PUT')
    assert code == 200 and answer['data'][0]['tags']['endpoint'] == '/foo'
    assert curl(url_of(flow, '/foo'), '-X', 'POST', '-d', '{}')[0] == 405
    assert curl(url_of(flow, '/bar'), '-X', 'POST', '-d', '{}')[0] == 404  # not exposed
    spec = curl_json(url_of(flow, '/openapi.json'))[1]
    operation = spec['paths']['/foo']['put']
    assert (operation['summary'], operation['tags']) == ('my endpoint', ['fine-tuning'])


def test_typed_documents_are_validated_and_encoded_with_the_executor_schema(flow: Flow) -> None:
    code, answer = post(url_of(flow, '/post'), {'execEndpoint': '/typed',
                                                'data': [{'title': 'abc', 'vec': [1.5, 2.5]}, {'title': 'x', 'n': 10}]})
    assert code == 200, answer
    first, second = answer['data']
    assert (first['title'], first['n'], first['vec']) == ('ABC', 4, [1.5, 2.5])  # the executor's default n=3
    assert (second['title'], second['n'], second['vec']) == ('X', 11, None)

    code, answer = post(url_of(flow, '/post'), {'execEndpoint': '/typed', 'data': [{'n': 1}]})
    assert code == 422
    assert 'data[0].title' in answer['header']['status']['description']
    code, answer = post(url_of(flow, '/post'), {'execEndpoint': '/typed', 'data': [{'title': 't', 'n': 'many'}]})
    assert code == 422 and 'data[0].n' in answer['header']['status']['description']


# -- errors ----------------------------------------------------------------------------------

def assert_error(answer: Any, name: str, *words: str) -> dict[str, Any]:
    status = answer['header']['status']
    assert status['code'] == 1 and status['exception']['name'] == name, status
    for word in words:
        assert word in status['description'], status['description']
    return status


def test_bad_input_gets_a_clear_4xx_and_the_gateway_stays_up(flow: Flow) -> None:
    url = url_of(flow, '/post')
    code, answer = post(url, None, raw='{"data": [')
    assert code == 400
    assert_error(answer, 'BadRequest', 'malformed JSON')
    for body, field in (([1, 2], 'body'), ({'data': 'text'}, 'data'), ({'data': [1]}, 'data[0]'),
                        ({'parameters': [1]}, 'parameters'), ({'execEndpoint': 5}, 'exec_endpoint'),
                        ({'data': {'docs': 'x'}}, 'data.docs')):
        code, answer = post(url, body)
        assert code == 422, (body, answer)
        assert_error(answer, 'BadRequest', field)
    code, answer = post(url, {'execEndpoint': '/nowhere', 'data': []})
    assert code == 404
    assert_error(answer, 'BadRequest', "'/nowhere'", "'/typed'", "'/slow'")
    code, answer = post(url, {'targetExecutor': '(', 'data': []})
    assert code == 400 and 'target_executor' in answer['header']['status']['description']

    big = json.dumps({'data': [{'text': 'x' * 30000}]})
    code, answer = post(url, None, raw=big)
    assert code == 413
    assert_error(answer, 'BadRequest', 'max_body_bytes')
    code, text = curl(url, '-H', 'Content-Type: application/json', '-H', 'Transfer-Encoding: chunked',
                      '--data-binary', big)
    assert code == 413 and 'max_body_bytes' in text
    assert curl(url_of(flow, '/'))[0] == 200
    assert curl(url_of(flow, '/dry_run'))[1] == '{"code":0,"description":"","exception":null}'


def test_executor_error_is_500_timeout_is_504(flow: Flow) -> None:
    code, answer = post(url_of(flow, '/post'), {'execEndpoint': '/boom', 'data': [{'text': 'x'}]})
    assert code == 500
    status = assert_error(answer, 'ValueError', 'boom on purpose')
    assert status['exception']['executor'] == 'executor0'

    code, answer = post(url_of(flow, '/post'), {'execEndpoint': '/slow', 'data': [{'text': 'x'}]})
    assert code == 504
    assert_error(answer, 'InternalNetworkError', 'executor1', 'timeout_send')
    assert post(url_of(flow, '/post'), POST_BODY)[0] == 200


def test_deployment_down_is_503_and_readyz_names_it() -> None:
    with Flow(protocol='http', quiet=True, restart=False).add() as f:
        kill9(f.process_of('executor0/rep-0').pid)
        assert wait_until(lambda: curl(url_of(f, '/readyz'))[0] == 503, timeout=5) is not None
        code, answer = post(url_of(f, '/post'), POST_BODY)
        assert code == 503
        assert_error(answer, 'InternalNetworkError', 'executor0', 'may be down')
        with Client(port=f.port, protocol='http') as client:
            assert client.is_flow_ready() is False and client.dry_run() is False

        async def probes() -> tuple[bool, bool]:
            transport = HttpTransport('127.0.0.1', f.port)
            try:
                return await transport.is_ready('gateway', 2), await transport.is_ready('flow', 2)
            finally:
                await transport.close()

        assert asyncio.run(probes()) == (True, False)  # the gateway lives, the Flow is not ready


def test_probes_never_raise_when_nothing_listens(port: int) -> None:
    with Client(port=port, protocol='http') as client:
        assert client.is_flow_ready(timeout=1) is False and client.dry_run(timeout=1) is False
        from plait.errors import InternalNetworkError
        with pytest.raises(InternalNetworkError, match=str(port)):
            client.post('/', [Document(text='x')])


# -- the rest of the surface -----------------------------------------------------------------

def test_client_over_http_sends_many_requests_in_order_with_parameters(flow: Flow) -> None:
    with Client(port=flow.port, protocol='http') as client:
        docs = client.post('/search', [Document(text=str(i)) for i in range(20)], request_size=3,
                           parameters={'p': 'v'})
        assert [d.text for d in docs if d.text != 'main was called'] == [str(i) for i in range(20)]
        assert all(d.tags == {'endpoint': '/search', 'param': 'v'} for d in docs if d.text != 'main was called')
        responses = client.post('/', [Document(text='x')], return_responses=True)
        assert responses[0].routes[0].executor == 'gateway'
        assert client.is_flow_ready() and client.dry_run() and client.status()['jina']['plait']
        from plait.errors import ExecutorError
        with pytest.raises(ExecutorError, match='boom on purpose'):
            client.post('/boom', [Document(text='x')])


def test_metrics_count_requests_per_route(flow: Flow) -> None:
    post(url_of(flow, '/post'), POST_BODY)
    code, text = curl(url_of(flow, '/metrics'))
    assert code == 200
    assert re.search(r'plait_gateway_http_requests_total\{method="POST",path="/post",status="200"\} \d', text)
    assert 'plait_gateway_http_request_duration_seconds_bucket' in text


def test_cors_headers_only_when_enabled(flow: Flow) -> None:
    origin = ('-H', 'Origin: http://example.test', '-D', '-', '-o', '/dev/null')
    assert 'access-control-allow-origin' not in curl(url_of(flow, '/'), *origin)[1].lower()
    with Flow.load_config(CORS_YAML, quiet=True) as f:
        headers = curl(url_of(f, '/'), *origin)[1].lower()
        assert 'access-control-allow-origin: ' in headers
        preflight = curl(url_of(f, '/post'), '-X', 'OPTIONS', '-H', 'Origin: http://example.test',
                         '-H', 'Access-Control-Request-Method: POST', '-D', '-', '-o', '/dev/null')
        assert preflight[0] == 200 and 'access-control-allow-methods' in preflight[1].lower()


# -- the seeds' YAML -------------------------------------------------------------------------

CORS_YAML = """
jtype: Flow
with:
  protocol: 'http'
  cors: True,
"""


def test_seed_yaml_protocols_load_and_serve() -> None:
    for protocol in ('http', 'websocket'):
        with Flow.load_config(f"jtype: Flow\nwith:\n  protocol: '{protocol}'\n", quiet=True) as f:
            assert f.protocol == protocol
            assert curl(url_of(f, '/')) == (200, '{}')
            assert curl(url_of(f, '/dry_run'))[1] == '{"code":0,"description":"","exception":null}'


def test_seed_yaml_expose_endpoints() -> None:
    yaml_text = """
jtype: Flow
with:
  protocol: http
  expose_endpoints:
    /foo:
      summary: my endpoint
    /bar:
      methods: ["PUT"]
      summary: my endpoint
      tags:
        - fine-tuning
"""
    with Flow.load_config(yaml_text, quiet=True) as f:
        assert post(url_of(f, '/foo'), {'data': [{'text': 'x'}]})[0] == 200
        code, answer = post(url_of(f, '/bar'), {'data': [{'text': 'y'}]}, method='PUT')
        assert code == 200 and answer['data'][0]['text'] == 'y'
        spec = curl_json(url_of(f, '/openapi.json'))[1]
        assert spec['paths']['/foo']['post']['summary'] == 'my endpoint'
        assert spec['paths']['/bar']['put']['tags'] == ['fine-tuning']


def test_seed_yaml_hides_debug_and_crud_endpoints() -> None:
    yaml_text = """
jtype: Flow
with:
  protocol: 'http'
  no_debug_endpoints: True,
  no_crud_endpoints: True
"""
    with Flow.load_config(yaml_text, quiet=True) as f:
        for path in ('/status', '/post', '/index', '/search', '/update', '/delete'):
            assert curl(url_of(f, path), '-X', 'POST' if path != '/status' else 'GET')[0] in (404, 405), path
        assert curl(url_of(f, '/'))[0] == 200 and curl(url_of(f, '/dry_run'))[0] == 200
        paths = curl_json(url_of(f, '/openapi.json'))[1]['paths']
        assert '/post' not in paths and '/index' not in paths and '/' in paths


def test_uvicorn_kwargs_reach_uvicorn() -> None:
    with Flow(protocol='http', quiet=True, uvicorn_kwargs={'loop': 'asyncio', 'http': 'httptools',
                                                           'headers': [('x-served-by', 'plait-test')]}) as f:
        code, headers = curl(url_of(f, '/'), '-D', '-', '-o', '/dev/null')
        assert code == 200 and 'x-served-by: plait-test' in headers.lower()
