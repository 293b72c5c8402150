"""Hostile gRPC input, on the gateway and on an executor, to `process_single_data` and to the
`Call` stream: garbage and truncated bytes, corrupt documents, unknown and non-ASCII
endpoints, messages above the receive cap, a real 50 MB message, and random bytes. Every
call ends with a clear status within a bound, and the server keeps serving.

The calls go through raw channels (bytes in, bytes out), as a hostile client would send them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import Document, DocumentArray, Executor, Flow, requests
from plait.proto import jina_data_pb2
from plait.documents import encode_docs

UNARY = '/jina.JinaSingleDataRequestRPC/process_single_data'
STREAM = '/jina.JinaRPC/Call'
CALL_TIMEOUT = 30.0  # every call is bounded: a hang fails as DEADLINE_EXCEEDED, not as a stuck test
CAP = 1024 * 1024    # the lowered receive cap of the `capped` Flow
OK, ERROR = 'OK', 'ERROR'
_NO_LIMIT = [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)]


class EchoOnly(Executor):
    """Serves `/echo` and nothing else, so any other endpoint is unknown."""

    @requests(on='/echo')
    def echo(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.tags['echoed'] = True


def request_bytes(endpoint: str | None = '/echo', text: str = 'hi', n_docs: int = 1) -> bytes:
    req = jina_data_pb2.DataRequestProto()
    req.header.request_id = f'req-{endpoint!r}-{n_docs}'
    if endpoint is not None:
        req.header.exec_endpoint = endpoint
    encode_docs(DocumentArray([Document(id=f'd{i}', text=text) for i in range(n_docs)]), req.data)
    return req.SerializeToString()


def corrupt_documents() -> bytes:
    """A valid header whose documents are garbage (the gateway passes them on undecoded)."""
    header = jina_data_pb2.DataRequestProto()
    header.header.exec_endpoint = '/echo'
    return header.SerializeToString() + b'\x22\x06' + b'\xff' * 6  # field 4, 6 bytes of garbage


def truncated() -> bytes:
    body = request_bytes(text='x' * 200)
    return body[: len(body) - 50]  # cut inside the documents: the lengths no longer add up


# the hostile caller holds the Flow's secret, so what is tested is the executor's handling of the
# bytes, not its refusal of strangers (tests/test_auth*.py cover that); the gateway has no token
SECRET = 'hostile-test-secret'
CREDENTIALS = (('authorization', f'Bearer {SECRET}'),)


@dataclass
class Outcome:
    """How a call ended: its gRPC status code and, per streamed response, the header status."""

    code: str
    details: str = ''
    responses: tuple[str, ...] = ()
    exception_names: tuple[str, ...] = ()


def _parse_responses(bodies: list[bytes]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    parsed = [jina_data_pb2.DataRequestProto.FromString(b) for b in bodies]
    statuses = tuple('ERROR' if r.header.status.code == r.header.status.ERROR else 'OK' for r in parsed)
    return statuses, tuple(r.header.status.exception.name for r in parsed)


def unary(port: int, body: bytes) -> Outcome:
    with grpc.insecure_channel(f'127.0.0.1:{port}', options=_NO_LIMIT) as channel:
        try:
            reply = channel.unary_unary(UNARY)(body, timeout=CALL_TIMEOUT, metadata=CREDENTIALS)
        except grpc.RpcError as e:
            return Outcome(e.code().name, e.details() or '')
    statuses, names = _parse_responses([reply])
    return Outcome('OK', '', statuses, names)


def stream(port: int, bodies: list[bytes]) -> Outcome:
    with grpc.insecure_channel(f'127.0.0.1:{port}', options=_NO_LIMIT) as channel:
        call = channel.stream_stream(STREAM)(iter(bodies), timeout=CALL_TIMEOUT, metadata=CREDENTIALS)
        received: list[bytes] = []
        try:
            received.extend(call)
        except grpc.RpcError as e:
            statuses, names = _parse_responses(received)
            return Outcome(e.code().name, e.details() or '', statuses, names)
    statuses, names = _parse_responses(received)
    return Outcome('OK', '', statuses, names)


def still_serves(port: int) -> None:
    """A valid request right after the hostile one succeeds, unary and streamed."""
    assert unary(port, request_bytes()).responses == (OK,)
    assert stream(port, [request_bytes(), request_bytes()]).responses == (OK, OK)


def _flow(env: dict[str, str] | None = None) -> Iterator[dict[str, int]]:
    mp = pytest.MonkeyPatch()
    mp.setenv('PLAIT_EXECUTOR_SECRET', SECRET)  # the executor answers callers that hold the Flow's secret
    try:
        with Flow(quiet=True, env=env).add(uses=EchoOnly) as f:
            yield {'gateway': f.port, 'executor': f.deployments['executor0'].worker_ports[0][0]}
    finally:
        mp.undo()


@pytest.fixture(scope='module')
def ports() -> Iterator[dict[str, int]]:
    yield from _flow()


@pytest.fixture(scope='module')
def capped_ports() -> Iterator[dict[str, int]]:
    yield from _flow({'PLAIT_GRPC_RECV_BYTES': str(CAP)})


TARGETS = ['gateway', 'executor']

# name: (body, expected unary outcome, expected Call outcome)
# a unary outcome is a gRPC code, or 'OK' with the response header status ERROR/OK;
# a Call outcome is a gRPC code, or the header statuses of its responses
CASES: dict[str, tuple[Callable[[], bytes], str, Any]] = {
    'garbage bytes': (lambda: b'\xff' * 64, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'),
    'truncated message': (truncated, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'),
    'corrupt documents': (corrupt_documents, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'),
    'unknown endpoint': (lambda: request_bytes('/nope'), 'NOT_FOUND', (ERROR,)),
    'non-ASCII endpoint': (lambda: request_bytes('/ñandú/搜索/✓'), 'NOT_FOUND', (ERROR,)),
    'endpoint with control bytes': (lambda: request_bytes('/a\x00b\r\nc'), 'NOT_FOUND', (ERROR,)),
    'very long endpoint': (lambda: request_bytes('/' + 'x' * 100_000), 'NOT_FOUND', (ERROR,)),
    'no endpoint, only a default': (lambda: request_bytes(None), 'NOT_FOUND', (ERROR,)),
    'empty message': (lambda: b'', 'NOT_FOUND', (ERROR,)),
    'valid': (request_bytes, OK, (OK,)),
}


@pytest.mark.parametrize('target', TARGETS)
@pytest.mark.parametrize('case', list(CASES))
def test_process_single_data_ends_with_a_clear_status(ports: dict[str, int], target: str, case: str) -> None:
    make, expected, _ = CASES[case]
    outcome = unary(ports[target], make())
    if expected == OK:
        assert (outcome.code, outcome.responses) == ('OK', (OK,)), outcome
    else:
        assert outcome.code == expected, outcome
        assert outcome.details  # says what was wrong
    if expected == 'NOT_FOUND':
        assert 'not served' in outcome.details and '/echo' in outcome.details  # names what is served
    still_serves(ports[target])


@pytest.mark.parametrize('target', TARGETS)
@pytest.mark.parametrize('case', list(CASES))
def test_call_stream_ends_with_a_clear_status(ports: dict[str, int], target: str, case: str) -> None:
    make, _, expected = CASES[case]
    outcome = stream(ports[target], [make()])
    if isinstance(expected, tuple):
        assert (outcome.code, outcome.responses) == ('OK', expected), outcome
        if ERROR in expected:
            assert outcome.exception_names == ('BadRequest',), outcome  # an error, not a silent success
    else:
        assert outcome.code == expected, outcome
    still_serves(ports[target])


@pytest.mark.parametrize('target', TARGETS)
def test_a_bad_request_in_a_stream_fails_alone_or_ends_the_stream_clearly(ports: dict[str, int],
                                                                          target: str) -> None:
    port = ports[target]
    mixed = stream(port, [request_bytes(), request_bytes('/nope'), request_bytes()])
    assert mixed.code == 'OK' and sorted(mixed.responses) == [ERROR, OK, OK], mixed
    broken = stream(port, [request_bytes(), b'\xff' * 64, request_bytes()])
    assert broken.code == 'INVALID_ARGUMENT', broken
    still_serves(port)


@pytest.mark.parametrize('target', TARGETS)
@pytest.mark.parametrize('how', ['unary', 'stream'])
def test_above_the_receive_cap_is_resource_exhausted(capped_ports: dict[str, int], target: str, how: str) -> None:
    port = capped_ports[target]
    big = request_bytes(text='x' * (2 * CAP))
    outcome = unary(port, big) if how == 'unary' else stream(port, [big])
    assert outcome.code == 'RESOURCE_EXHAUSTED', outcome
    under = request_bytes(text='x' * (CAP // 2))
    assert unary(port, under).responses == (OK,)  # below the cap: served
    still_serves(port)


@pytest.mark.parametrize('target', TARGETS)
def test_a_50_mb_message_under_the_default_cap_is_served_or_refused_cleanly(ports: dict[str, int],
                                                                            target: str) -> None:
    port = ports[target]
    body = request_bytes(text='y' * (50 * 1024 * 1024))
    assert len(body) > 50 * 1024 * 1024
    for outcome in (unary(port, body), stream(port, [body])):
        assert outcome.code in ('OK', 'RESOURCE_EXHAUSTED'), outcome
        if outcome.code == 'OK':
            assert outcome.responses == (OK,), outcome
        print(f'MEASURE hostile.50mb target={target} code={outcome.code}', flush=True)
    still_serves(port)


_FUZZ = settings(max_examples=int(os.environ.get('PLAIT_FUZZ_EXAMPLES', '40')), deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize('target', TARGETS)
@_FUZZ
@given(body=st.binary(max_size=512))
def test_random_bytes_never_hang_or_break_the_server(ports: dict[str, int], target: str, body: bytes) -> None:
    outcome = unary(ports[target], body)
    # random bytes are malformed, or parse as a request for an endpoint nobody serves
    assert outcome.code in ('INVALID_ARGUMENT', 'NOT_FOUND'), outcome
    assert unary(ports[target], request_bytes()).responses == (OK,)


@pytest.mark.parametrize('target', TARGETS)
@_FUZZ
@given(endpoint=st.text(max_size=64).filter(lambda e: e not in ('/echo', '_jina_dry_run_')))
def test_random_endpoints_are_errors_not_silent_successes(ports: dict[str, int], target: str,
                                                          endpoint: str) -> None:
    port = ports[target]
    assert unary(port, request_bytes(endpoint)).code == 'NOT_FOUND'
    streamed = stream(port, [request_bytes(endpoint)])
    assert (streamed.code, streamed.responses, streamed.exception_names) == ('OK', (ERROR,), ('BadRequest',))
