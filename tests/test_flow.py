"""Flow: building the graph (names, needs, joins, shards and polling, `when`), and starting and
stopping it with real processes: parallel start bounded by timeout_ready, clear failures,
no orphan on exit, exception, killed executor or SIGTERM, two Flows at once."""

from __future__ import annotations

import json
import threading

import pytest
from executors import FailInit, ShardAppend, SlowInit, Stamp, Trace
from flow_helpers import Script, alive, children_of, kill9, wait_until

from plait import Document, DocumentArray, Flow
from plait.errors import BadConfig, RuntimeFailedToStart
from plait.serve.gateway.config import START


def labels_of(f: Flow) -> list[str]:
    return [p.label for p in f._group.processes] if f._group else []


def pids_of(f: Flow) -> list[int]:
    return [f.process_of(label).pid for label in labels_of(f)]


# -- building (no processes) ---------------------------------------------------------------

def test_default_names_linear_needs_and_gateway_options() -> None:
    f = Flow(protocol='grpc', port=12345, timeout_send=500, prefetch=3, compression='gzip', quiet=True)
    f.add().add(uses=Trace).add(name='last', needs='executor0')
    config = f.gateway_config()
    assert [d.name for d in config.deployments] == ['executor0', 'executor1', 'last']
    assert {d.name: d.needs for d in config.deployments} == {
        'executor0': [START], 'executor1': ['executor0'], 'last': ['executor0']}
    assert (config.ports, config.protocols) == ([12345], ['grpc'])
    assert (config.timeout_send, config.prefetch, config.compression) == (500, 3, 'gzip')


def test_shards_replicas_and_polling_in_the_topology() -> None:
    f = Flow(quiet=True).add(replicas=2, shards=3, polling={'/search': 'ALL', '*': 'ANY'})
    f.add(polling='all')
    first, second = f.gateway_config().deployments
    assert [len(shard) for shard in first.shards] == [2, 2, 2]
    assert len(set(first.addresses())) == 6
    assert (first.polling_for('/search'), first.polling_for('/index')) == ('ALL', 'ANY')
    assert second.polling_for('/anything') == 'ALL'


@pytest.mark.parametrize('build, message', [
    (lambda: Flow().add(name='a').add(name='a'), 'already'),
    (lambda: Flow().add(needs='nowhere'), 'nowhere'),
    (lambda: Flow().add(polling='SOME'), 'polling'),
    (lambda: Flow().add(when={'tags__key': {'$like': 1}}), '$like'),
    (lambda: Flow().add(replicas=0), 'replicas'),
])
def test_bad_graphs_are_refused_when_built(build, message: str) -> None:
    with pytest.raises(BadConfig, match=message.replace('$', r'\$')):
        build()


# -- serving ----------------------------------------------------------------------------------

def test_linear_flow_runs_executors_in_order_and_noop_passes_through() -> None:
    with Flow(quiet=True).add(uses=Trace).add().add(uses=Trace) as f:
        docs = f.post('/', DocumentArray([Document(text='hello') for _ in range(3)]))
        assert [d.text for d in docs] == ['hello'] * 3
        assert [d.tags['trace'] for d in docs] == [['executor0', 'executor2']] * 3
        assert f.post('/any/endpoint', Document()).tags[0]['trace'] == ['executor0', 'executor2']


def test_dag_joins_branches_and_merges_docs_by_id() -> None:
    f = (Flow(quiet=True)
         .add(name='a', uses=Stamp, uses_with={'field': 'text', 'value': 'from-a'})
         .add(name='b', uses=Stamp, uses_with={'field': 'uri', 'value': 'from-b'}, needs='gateway')
         .add(name='c', uses=Trace, needs=['a', 'b'])
         .add(name='d', uses=Stamp, uses_with={'field': 'mime_type', 'value': 'from-d'}, needs='gateway'))
    with f:
        inputs = DocumentArray([Document(id=f'doc-{i}') for i in range(4)])
        out = f.post('/', inputs)
    # c joined a and b; the gateway joined the two leaves c and d: one document per id
    assert sorted(d.id for d in out) == sorted(inputs.ids)
    for doc in out:
        assert (doc.text, doc.uri, doc.mime_type) == ('from-a', 'from-b', 'from-d')
        assert doc.tags['trace'] == ['c']


def test_shards_any_reach_one_shard_all_reach_every_shard() -> None:
    f = Flow(quiet=True).add(uses=ShardAppend, shards=2, polling={'/all': 'ALL', '*': 'ANY'})
    with f:
        every = f.post('/all', Document(id='input'))
        assert sorted(d.id for d in every) == ['input', 'shard-0', 'shard-1']
        seen = set()
        for _ in range(4):
            one = f.post('/any', Document(id='input'))
            added = [d.id for d in one if d.id != 'input']
            assert len(added) == 1 and len(one) == 2
            seen.update(added)
        assert seen == {'shard-0', 'shard-1'}  # ANY still spreads requests over the shards


def test_when_sends_only_matching_documents_to_a_deployment() -> None:
    f = (Flow(quiet=True)
         .add(name='fives', uses=Trace, when={'tags__key': {'$eq': 5}})
         .add(name='fours', uses=Trace, when={'tags__key': {'$eq': 4}}, needs='gateway')
         .needs_all(name='joiner')
         .add(name='big', uses=Trace, when={'$or': [{'tags__key': {'$gte': 5}}, {'text': {'$regex': '^x'}}]}))
    with f:
        inputs = DocumentArray([Document(id='five', tags={'key': 5}), Document(id='four', tags={'key': 4}),
                                Document(id='three', tags={'key': 3})])
        out = {d.id: d.tags['trace'] for d in f.post('/', inputs)}
        # 'three' matches no branch, so no branch carries it on; 'four' does not match `big`
        assert out == {'five': ['fives', 'big']}
        assert f.dry_run() is True  # dry_run reaches every deployment, conditions or not
        # when nothing matches, the deployment is skipped (no error, no documents)
        assert len(f.post('/', Document(tags={'key': 0}))) == 0


# -- starting and stopping ---------------------------------------------------------------------

def test_executor_failing_in_init_aborts_start_and_names_it() -> None:
    f = Flow(quiet=True).add(uses=Trace).add(uses=FailInit).add(uses=Trace)
    with pytest.raises(RuntimeFailedToStart) as failure, f:
        pytest.fail('the Flow must not start')
    message = str(failure.value)
    assert 'executor1' in message and 'marker-7d1e' in message  # who failed, and its log tail
    assert labels_of(f) and not any(alive(pid) for pid in pids_of(f))


def test_timeout_ready_bounds_the_start() -> None:
    f = Flow(quiet=True, timeout_ready=1500).add(uses=SlowInit)
    with pytest.raises(RuntimeFailedToStart, match='timeout_ready') as failure, f:
        pytest.fail('the Flow must not start')
    assert 'executor0' in str(failure.value)
    assert not any(alive(pid) for pid in pids_of(f))


def test_exception_in_the_block_stops_everything() -> None:
    f = Flow(quiet=True).add(uses=Trace).add()
    with pytest.raises(ZeroDivisionError), f:
        pids = pids_of(f)
        assert len(pids) == 3 and all(alive(p) for p in pids)
        raise ZeroDivisionError('inside the block')
    assert not any(alive(p) for p in pids)
    assert f.is_flow_ready() is False and f.dry_run() is False


def test_leaving_after_an_executor_was_killed_stops_the_rest() -> None:
    with Flow(quiet=True, restart=False).add(uses=Trace).add(uses=Trace) as f:
        pids = pids_of(f)
        kill9(f.process_of('executor1/rep-0').pid)
        assert wait_until(lambda: not f.is_flow_ready(timeout=1), timeout=1.0) is not None
        assert f.dry_run() is False
    assert not any(alive(p) for p in pids)


def test_block_returns_on_sigterm_and_the_flow_stops() -> None:
    script = Script("""
        from plait import Flow

        f = Flow(quiet=True).add().add()
        with f:
            labels = ('executor0/rep-0', 'executor1/rep-0', 'gateway')
            print('PIDS', [f.process_of(label).pid for label in labels], flush=True)
            f.block()
        print('BLOCK RETURNED', flush=True)
        """)
    try:
        pids = json.loads(script.wait_for_line('PIDS', timeout=90).split('PIDS', 1)[1])
        helpers = children_of(script.proc.pid)  # the services, or the fork server they come from
        assert len(pids) == 3 and all(alive(p) for p in pids) and helpers
        assert script.stop() == 0
        script.wait_for_line('BLOCK RETURNED', timeout=5)
        assert wait_until(lambda: not any(alive(p) for p in [*pids, *helpers]), timeout=5) is not None
    finally:
        script.close()


def test_two_flows_in_one_process_at_once() -> None:
    one = Flow(quiet=True).add(name='one', uses=Trace)
    two = Flow(quiet=True).add(name='two', uses=Trace)
    errors: list[Exception] = []

    def start_one() -> None:
        try:
            one.start()
        except Exception as e:  # noqa: BLE001  (reported by the test)
            errors.append(e)

    starter = threading.Thread(target=start_one)
    starter.start()  # the two start at the same time
    try:
        with two:
            starter.join(timeout=60)
            assert not errors
            assert one.port != two.port
            assert one.post('/', Document())[0].tags['trace'] == ['one']
            assert two.post('/', Document())[0].tags['trace'] == ['two']
            assert one.is_flow_ready() and two.is_flow_ready()
        assert one.is_flow_ready() is True  # stopping one leaves the other alone
    finally:
        starter.join(timeout=60)
        one.close()


def test_flow_of_five_executors_starts_serves_and_stops_cleanly() -> None:
    f = Flow(quiet=True)
    for _ in range(5):
        f.add(uses=Trace)
    with f:
        pids = pids_of(f)
        assert len(pids) == 6 and all(alive(p) for p in pids)
        docs = f.post('/', DocumentArray([Document() for _ in range(10)]), request_size=2)
        assert len(docs) == 10
        assert all(d.tags['trace'] == [f'executor{i}' for i in range(5)] for d in docs)
    assert not any(alive(p) for p in pids)
