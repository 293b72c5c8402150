"""The executor runtime as a process: health, reflection, drain on SIGTERM, errors from user
code, unknown endpoints and malformed bytes — talked to with grpcurl and raw gRPC."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flow_helpers import wait_until
from plait.proto import jina_data_pb2

TESTS = Path(__file__).parent
GRPCURL = shutil.which('grpcurl') or str(Path(sys.executable).parent / 'grpcurl')


def health(port: int, timeout: float = 1.0) -> str:
    with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as e:
            return e.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@contextmanager
def worker(port: int, uses: str = 'plait.executor:NoOpExecutor', *extra: str, name: str = 'executor0'):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen([sys.executable, '-m', 'plait.serve.worker', '--host', '127.0.0.1', '--port', str(port),
                             '--uses', uses, '--name', name, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_until(lambda: health(port) == 'SERVING' or proc.poll() is not None, 30) is not None, \
            'worker did not start'
        assert proc.poll() is None, proc.stdout.read()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([GRPCURL, '-plaintext', *args], capture_output=True, text=True, timeout=30)


def data_request(endpoint: str, texts=('hello',), parameters=None) -> jina_data_pb2.DataRequestProto:
    from plait import Document, DocumentArray
    from plait.documents import encode_docs

    req = jina_data_pb2.DataRequestProto()
    req.header.request_id = 'req-1'
    req.header.exec_endpoint = endpoint
    if parameters:
        req.parameters.update(parameters)
    encode_docs(DocumentArray([Document(text=t) for t in texts]), req.data)
    return req


def call_single(port: int, request, timeout: float = 30.0):
    with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
        call = channel.unary_unary('/jina.JinaSingleDataRequestRPC/process_single_data',
                                   request_serializer=jina_data_pb2.DataRequestProto.SerializeToString,
                                   response_deserializer=jina_data_pb2.DataRequestProto.FromString)
        response, info = call.with_call(request, timeout=timeout)
        return response, dict(info.trailing_metadata() or ())


def test_grpcurl_health_and_reflection(port):
    with worker(port):
        out = grpcurl(f'127.0.0.1:{port}', 'grpc.health.v1.Health/Check')
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {'status': 'SERVING'}
        listed = grpcurl(f'127.0.0.1:{port}', 'list').stdout.split()
        for service in ('grpc.health.v1.Health', 'jina.JinaSingleDataRequestRPC', 'jina.JinaDataRequestRPC',
                        'jina.JinaRPC', 'jina.JinaDiscoverEndpointsRPC', 'jina.JinaInfoRPC',
                        'grpc.reflection.v1alpha.ServerReflection'):
            assert service in listed
        status = json.loads(grpcurl(f'127.0.0.1:{port}', 'jina.JinaInfoRPC/_status').stdout)
        assert status['jina']['session-id'] and status['jina']['python']
        assert status['envs']['PLAIT_LOG_LEVEL'] == os.environ.get('PLAIT_LOG_LEVEL', '(unset)')


def test_endpoint_discovery_lists_endpoints_and_schemas(port):
    with worker(port, 'worker_executors:TypedExecutor'):
        out = json.loads(grpcurl(f'127.0.0.1:{port}', 'jina.JinaDiscoverEndpointsRPC/endpoint_discovery').stdout)
        assert set(out['endpoints']) == {'/summarize', '_jina_dry_run_'}
        schema = out['schemas']['/summarize']
        assert schema['input']['name'] == 'Poem' and 'title' in schema['input']['model']['properties']
        assert schema['output']['name'] == 'Summary' and 'length' in schema['output']['model']['properties']


def test_health_is_instant_while_user_code_is_busy(port, tmp_path, wait):
    started = tmp_path / 'started'
    with worker(port, 'worker_executors:SlowExecutor', '--uses-with', '{"seconds": 3}'):
        result = {}
        request = data_request('/', parameters={'started': str(started)})
        busy = threading.Thread(target=lambda: result.update(r=call_single(port, request)))
        busy.start()
        wait(started.exists, 30, 'the Executor method to start')
        assert health(port, timeout=0.5) == 'SERVING'  # answered while the method sleeps
        busy.join(timeout=30)
        response, _ = result['r']
        assert response.header.status.code == 0


def test_sigterm_drains_in_flight_request_then_exits(port, tmp_path, wait):
    started = tmp_path / 'started'
    with worker(port, 'worker_executors:SlowExecutor', '--uses-with', '{"seconds": 2}') as proc:
        result = {}
        request = data_request('/', parameters={'started': str(started)})
        busy = threading.Thread(target=lambda: result.update(r=call_single(port, request)))
        busy.start()
        wait(started.exists, 30, 'the Executor method to start')
        proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: health(port, 0.3) in ('NOT_SERVING', 'UNAVAILABLE'), timeout=1.5) is not None
        busy.join(timeout=30)
        response, _ = result['r']
        assert response.header.status.code == 0
        from plait.documents import decode_docs
        from plait import DocumentArray
        assert decode_docs(response.data, DocumentArray)[0].tags == {'slept': True}
        assert proc.wait(timeout=15) == 0
        output = proc.stdout.read()
        assert 'draining' in output and 'stopped' in output


def test_executor_exception_is_returned_and_worker_keeps_serving(port):
    with worker(port, 'worker_executors:FailingExecutor', name='failer'):
        response, trailing = call_single(port, data_request('/fail'))
        status = response.header.status
        assert status.code == 1
        assert status.exception.name == 'ZeroDivisionError'
        assert list(status.exception.args) == ['cannot divide the docs', '42']
        assert status.exception.executor == 'failer'
        assert any('raise ZeroDivisionError' in line for line in status.exception.stacks)
        assert trailing.get('is-error') == 'true'
        ok, trailing = call_single(port, data_request('/ok'))
        assert ok.header.status.code == 0 and 'is-error' not in trailing


def test_unknown_endpoint_is_not_found_and_names_the_known_ones(port):
    with worker(port, 'worker_executors:FailingExecutor', name='failer'):
        with pytest.raises(grpc.RpcError) as err:
            call_single(port, data_request('/nope'))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        description = err.value.details()
        assert "'/nope'" in description and '/fail' in description and '/ok' in description
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:  # in a stream: an error response
            stream = channel.stream_stream('/jina.JinaRPC/Call',
                                           request_serializer=jina_data_pb2.DataRequestProto.SerializeToString,
                                           response_deserializer=jina_data_pb2.DataRequestProto.FromString)
            (response,) = list(stream(iter([data_request('/ünknown')]), timeout=10))
        assert response.header.status.exception.name == 'BadRequest'
        assert "'/ünknown'" in response.header.status.description


def test_malformed_bytes_get_invalid_argument(port):
    with worker(port):
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
            unary = channel.unary_unary('/jina.JinaSingleDataRequestRPC/process_single_data')
            with pytest.raises(grpc.RpcError) as err:
                unary(b'\xff\xff\xff not protobuf', timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            stream = channel.stream_stream('/jina.JinaRPC/Call')
            with pytest.raises(grpc.RpcError) as err:
                list(stream(iter([b'\x0a\xff']), timeout=5))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert health(port) == 'SERVING'


def test_uses_not_importable_exits_with_a_clear_error(port):
    proc = subprocess.run([sys.executable, '-m', 'plait.serve.worker', '--host', '127.0.0.1', '--port', str(port),
                           '--uses', 'no_such_module:Thing'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot import module 'no_such_module'" in proc.stderr


def test_port_in_use_is_a_clear_error(port):
    with worker(port):
        proc = subprocess.run([sys.executable, '-m', 'plait.serve.worker', '--host', '127.0.0.1', '--port',
                               str(port)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert f'port {port} is already in use' in proc.stderr
        assert health(port) == 'SERVING'


def test_call_stream_serves_many_requests(port):
    with worker(port, 'worker_executors:AsyncEcho'):
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
            stream = channel.stream_stream('/jina.JinaRPC/Call',
                                           request_serializer=jina_data_pb2.DataRequestProto.SerializeToString,
                                           response_deserializer=jina_data_pb2.DataRequestProto.FromString)
            requests = []
            for i in range(20):
                req = data_request('/', texts=[f't{i}'])
                req.header.request_id = f'r{i}'
                requests.append(req)
            responses = list(stream(iter(requests), timeout=30))
        assert sorted(r.header.request_id for r in responses) == sorted(f'r{i}' for i in range(20))
        from plait.documents import decode_docs
        from plait import DocumentArray
        texts = sorted(decode_docs(r.data, DocumentArray)[0].text for r in responses)
        assert texts == sorted(f'async t{i}' for i in range(20))


def test_published_schemas_are_readable_by_pydantic_v1_gateways():
    """Jina's gateways rebuild document models from these schemas with a pydantic v1 reader:
    no `{"type": "null"}` options, no boolean additionalProperties, `definitions` present."""
    from docarray import DocList
    from worker_executors import Poem

    from plait.documents import DocumentArray
    from plait.serve.worker import _json_schema

    class Holder(Poem):
        poems: DocList[Poem] = DocList[Poem]([])

    for doc_list_type in (DocumentArray, DocList[Poem], DocList[Holder]):
        schema = _json_schema(doc_list_type)
        text = json.dumps(schema)
        assert '"null"' not in text and '"additionalProperties": true' not in text, text
        if '$defs' in schema:
            assert schema['definitions'] == schema['$defs']
    document = _json_schema(DocumentArray)['properties']
    assert document['text'] == {'type': 'string', 'default': None, 'title': 'Text'}
    assert document['tags']['type'] == 'object'
