"""The gRPC gateway in front of real executors: replicas (balance, retry, a replica killed
under load), timeout_send, prefetch, compression, target_executor, result order, the rpcs it
serves (Call, process_single_data, endpoint discovery), live readiness and its log lines;
and `when=` filtering and the join of documents at the protobuf level."""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest
from executors import Concurrency, Endpoints, Trace
from flow_helpers import grpcurl_json, kill9, wait_until

from plait import Client, Document, DocumentArray, Flow
from plait.errors import PlaitError
from plait.proto import jina_common_pb2, jina_data_pb2, jina_data_pb2_grpc
from plait.serve.gateway.filtering import compile_condition, filter_data
from plait.wire.join import merge_data
from plait.documents import decode_docs, encode_docs
from plait.wire.messages import dict_to_struct

HEALTH = 'grpc.health.v1.Health/Check'
SUCCESS = jina_common_pb2.StatusProto.SUCCESS


def data_request(endpoint: str, docs: DocumentArray, target: str = '', **parameters) -> jina_data_pb2.DataRequestProto:
    req = jina_data_pb2.DataRequestProto()
    req.header.request_id = uuid.uuid4().hex
    req.header.exec_endpoint = endpoint
    if target:
        req.header.target_executor = target
    dict_to_struct(parameters, req.parameters)
    encode_docs(docs, req.data)
    return req


def docs_of(response: jina_data_pb2.DataRequestProto) -> DocumentArray:
    return decode_docs(response.data, DocumentArray)


# -- replicas -------------------------------------------------------------------------------------

def test_replicas_share_requests_and_one_killed_under_load_loses_nothing() -> None:
    with Flow(quiet=True).add(uses=Trace, replicas=2) as f:
        seen = {f.post('/', Document())[0].tags['replica'] for _ in range(8)}
        assert seen == {0, 1}

        sent: list[list[str]] = []
        got: list[list[str]] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def load() -> None:
            with Client(port=f.port) as client:
                while not stop.is_set():
                    batch = DocumentArray([Document() for _ in range(4)])
                    try:
                        out = client.post('/', batch, request_size=2)
                    except Exception as e:  # noqa: BLE001  (reported by the test)
                        errors.append(e)
                        return
                    sent.append(batch.ids)
                    got.append(out.ids)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            assert wait_until(lambda: len(got) >= 5 or errors, timeout=30) is not None
            kill9(f.process_of('executor0/rep-0').pid)
            at_kill = len(got)
            assert wait_until(lambda: len(got) >= at_kill + 40 or errors, timeout=60) is not None
        finally:
            stop.set()
            loader.join(timeout=30)
        assert not errors, f'a request failed after the kill: {errors[0]!r}'
        assert got == sent  # every post returned its documents, in order
        print(f'{len(got)} posts, {len(got) - at_kill} after kill -9 of one replica, none lost')


# -- timeouts, prefetch, compression ------------------------------------------------------------

def test_timeout_send_fails_the_slow_request_and_the_flow_keeps_serving() -> None:
    with Flow(quiet=True, timeout_send=300).add(uses=Concurrency, uses_with={'delay': 0}) as f:
        start = time.monotonic()
        with pytest.raises(PlaitError, match='timeout_send'):
            f.post('/', Document(), parameters={'sleep': 5})
        print(f'slow request failed after {(time.monotonic() - start) * 1000:.0f} ms (timeout_send=300)')
        assert len(f.post('/', Document(), parameters={'sleep': 0})) == 1
        assert f.is_flow_ready() is True


def test_prefetch_bounds_requests_in_flight_per_client() -> None:
    def requests_generator():
        for _ in range(8):
            yield Document()

    with Flow(quiet=True, prefetch=2).add(uses=Concurrency, uses_with={'delay': 0.2}) as f:
        docs = f.post(on='/', inputs=requests_generator, request_size=1)
        assert len(docs) == 8
        assert max(d.tags['peak'] for d in docs) == 2  # the gateway let exactly 2 through at a time

        # the limit is per client: two clients at once may have 2 each in flight
        peaks: list[int] = []

        def one_client() -> None:
            with Client(port=f.port) as client:
                peaks.extend(d.tags['peak'] for d in client.post('/', requests_generator, request_size=1))

        threads = [threading.Thread(target=one_client) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(peaks) == 16
        assert 2 < max(peaks) <= 4


@pytest.mark.parametrize('compression', ['none', 'gzip', 'deflate'])
def test_compression_to_executors(compression: str) -> None:
    with Flow(quiet=True, compression=compression).add(uses=Trace).add(uses=Trace) as f:
        inputs = DocumentArray([Document(text='plait ' * 2000) for _ in range(4)])
        out = f.post('/', inputs)
        assert out.texts == inputs.texts
        assert all(d.tags['trace'] == ['executor0', 'executor1'] for d in out)
        assert f.dry_run() is True


# -- what the gateway serves ---------------------------------------------------------------------

def test_gateway_rpcs_discovery_target_executor_and_result_order() -> None:
    f = Flow(quiet=True).add(name='words', uses=Endpoints).add(name='slow', uses=Concurrency,
                                                                uses_with={'delay': 0})
    with f:
        address = f'127.0.0.1:{f.port}'
        discovered = grpcurl_json(address, 'jina.JinaDiscoverEndpointsRPC/endpoint_discovery')
        assert {'/foo', '/bar', '/search', '/default', '_jina_dry_run_'} <= set(discovered['endpoints'])
        assert 'input' in discovered['schemas']['/foo']

        with grpc.insecure_channel(address) as channel:
            single = jina_data_pb2_grpc.JinaSingleDataRequestRPCStub(channel).process_single_data
            reply = single(data_request('/foo', DocumentArray([Document(id='d')])), timeout=10)
            assert reply.header.status.code == SUCCESS
            doc = docs_of(reply)[0]
            assert (doc.id, doc.text, doc.tags['peak']) == ('d', 'foo by words', 1)
            assert [r.executor for r in reply.routes] == ['gateway', 'words', 'slow']

            # target_executor is a regular expression over deployment names
            only_slow = docs_of(single(data_request('/foo', DocumentArray([Document()]), target='slow'), timeout=10))
            assert only_slow[0].text is None and only_slow[0].tags['peak'] >= 1
            only_words = docs_of(single(data_request('/foo', DocumentArray([Document()]), target='wor.*'),
                                        timeout=10))
            assert only_words[0].text == 'foo by words' and 'peak' not in only_words[0].tags

            # JinaRPC/Call: the later requests finish first; in order unless asked otherwise
            call = jina_data_pb2_grpc.JinaRPCStub(channel).Call
            for in_order in (True, False):
                reqs = [data_request('/bar', DocumentArray([Document()]), sleep=(5 - i) * 0.1) for i in range(6)]
                metadata = (('__results_in_order__', 'true' if in_order else 'false'),)
                replies = list(call(iter(reqs), metadata=metadata, timeout=30))
                order = [r.header.request_id for r in replies]
                assert sorted(order) == sorted(r.header.request_id for r in reqs)
                assert all(docs_of(r)[0].text == 'bar by words' for r in replies)
                if in_order:
                    assert order == [r.header.request_id for r in reqs]
                else:
                    print('completion order:', [order.index(r.header.request_id) for r in reqs])

        # the Client keeps results in order too
        docs = f.post('/search', DocumentArray([Document(id=str(i)) for i in range(6)]), request_size=1,
                      results_in_order=True)
        assert docs.ids == [str(i) for i in range(6)]


def test_readiness_live_view_and_log_lines_when_a_replica_goes_and_comes_back() -> None:
    with Flow(quiet=True, restart=True).add(uses=Trace) as f:
        address = f'127.0.0.1:{f.port}'
        executor = f'127.0.0.1:{f.deployments["executor0"].port}'
        gateway_log = f.process_of('gateway').tail
        down = f'executor0 replica 0 at {executor} is down'
        back = f'executor0 replica 0 at {executor} is back'
        assert grpcurl_json(address, HEALTH, {'service': 'readiness'}) == {'status': 'SERVING'}

        kill9(f.process_of('executor0/rep-0').pid)
        assert wait_until(lambda: not f.is_flow_ready(timeout=1), timeout=1.0) is not None
        f.dry_run()  # requests while down must not repeat the "down" line
        f.dry_run()
        # the Flow restarts the executor on the same address; the gateway sees it come back
        assert wait_until(lambda: f.is_flow_ready(timeout=1), timeout=30, interval=0.1) is not None
        assert grpcurl_json(address, HEALTH, {'service': 'readiness'}) == {'status': 'SERVING'}
        assert f.post('/', Document())[0].tags['trace'] == ['executor0']
        lines = list(gateway_log)
        assert sum(down in line for line in lines) == 1, '\n'.join(lines)
        assert sum(back in line for line in lines) == 1, '\n'.join(lines)
        assert [i for i, line in enumerate(lines) if down in line] < [i for i, line in enumerate(lines)
                                                                      if back in line]


# -- when= filtering and joins at the protobuf level (no processes) ------------------------------

def _content(docs: DocumentArray) -> bytes:
    content = jina_data_pb2.DataRequestProto.DataContentProto()
    encode_docs(docs, content)
    return content.SerializeToString()


def _ids(data: bytes) -> list[str]:
    content = jina_data_pb2.DataRequestProto.DataContentProto.FromString(data)
    return [d.id for d in decode_docs(content, DocumentArray)]


DOCS = DocumentArray([
    Document(id='a', text='apple', tags={'key': 5, 'kind': 'fruit', 'n': {'deep': 1}, 'l': [1, 2]}),
    Document(id='b', text='bean', tags={'key': 4, 'kind': 'seed'}),
    Document(id='c', tags={'key': 'five'}),
])


@pytest.mark.parametrize('condition, expected', [
    ({'tags__key': {'$eq': 5}}, ['a']),
    ({'tags__key': 4}, ['b']),
    ({'tags__key': {'$neq': 5}}, ['b', 'c']),
    ({'tags__key': {'$gt': 4}}, ['a']),
    ({'tags__key': {'$gte': 4, '$lt': 5}}, ['b']),
    ({'tags__kind': {'$in': ['seed', 'nut']}}, ['b']),
    ({'tags__kind': {'$nin': ['seed']}}, ['a']),  # a missing field matches nothing but $exists
    ({'text': {'$regex': '^b'}}, ['b']),
    ({'tags__kind': {'$exists': False}}, ['c']),
    ({'tags__n__deep': {'$eq': 1}}, ['a']),
    ({'tags__l': {'$size': 2}}, ['a']),
    ({'$or': [{'tags__key': {'$eq': 4}}, {'text': {'$eq': 'apple'}}]}, ['a', 'b']),
    ({'$and': [{'tags__key': {'$gte': 4}}, {'tags__kind': {'$eq': 'seed'}}]}, ['b']),
    ({'$not': {'tags__key': {'$eq': 5}}}, ['b', 'c']),
    ({'tags__kind': {'$eq': 'fruit'}, 'text': {'$eq': 'apple'}}, ['a']),
])
def test_when_conditions_select_documents(condition: dict, expected: list[str]) -> None:
    data, send = filter_data(_content(DOCS), compile_condition(condition))
    assert send is True
    assert _ids(data) == expected


def test_when_with_no_match_skips_and_bad_conditions_are_refused() -> None:
    data, send = filter_data(_content(DOCS), compile_condition({'tags__key': {'$eq': 99}}))
    assert (send, _ids(data)) == (False, [])
    unchanged = _content(DOCS)
    assert filter_data(unchanged, compile_condition({'id': {'$exists': True}})) == (unchanged, True)
    for bad in ({'tags__key': {'$like': 1}}, {'$xor': []}, 'tags__key', {'tags__key': {'$in': 5}}, {}):
        with pytest.raises(ValueError):
            compile_condition(bad)


def test_join_merges_documents_by_id_and_updates_tags() -> None:
    left = DocumentArray([Document(id='x', text='left', tags={'a': 1, 'both': 'left'}), Document(id='only-left')])
    right = DocumentArray([Document(id='x', uri='right', tags={'b': 2, 'both': 'right'}), Document(id='only-right')])
    content = jina_data_pb2.DataRequestProto.DataContentProto.FromString(merge_data([_content(left),
                                                                                      _content(right)]))
    merged = {d.id: d for d in decode_docs(content, DocumentArray)}
    assert list(merged) == ['x', 'only-left', 'only-right']
    assert (merged['x'].text, merged['x'].uri) == ('left', 'right')
    assert merged['x'].tags == {'a': 1, 'b': 2, 'both': 'right'}
