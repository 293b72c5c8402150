"""Dynamic batching with real processes: requests merged into one call per batch, each caller
getting exactly its own documents back; size and timeout triggers, parameters, failures,
cancelling callers, drain on SIGTERM; the decorator, `uses_dynamic_batching` and YAML forms;
bad configuration refused at start-up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from batching_executors import Batched, Plain
from flow_helpers import script_env, wait_until
from prometheus_client.parser import text_string_to_metric_families

from plait import AsyncClient, Client, Deployment, Document, DocumentArray, Executor, Flow, dynamic_batching, requests
from plait.errors import BadConfig, ExecutorError
from plait.wire.ports import free_port

NAME = 'batcher'


@pytest.fixture(scope='module')
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope='module')
def batched(metrics_port: int):
    with Deployment(uses=Batched, name=NAME, monitoring=True, port_monitoring=metrics_port, quiet=True) as dep:
        yield dep


def scrape(port: int, prefix: str) -> dict[tuple[str, Any], float]:
    """(sample name, endpoint label) -> value, of the samples starting with `prefix`."""
    text = httpx.get(f'http://127.0.0.1:{port}/metrics', timeout=10, trust_env=False).text
    return {(s.name, s.labels.get('executor_endpoint')): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name.startswith(prefix)}


async def _post_all(port: int, endpoint: str, texts: list[str], parameters: dict | None = None,
                    timeout: float = 30) -> list[Any]:
    """Each text in its own request, all at once; the response (or the exception) per text."""
    async with AsyncClient(port=port) as client:
        async def one(text: str) -> Any:
            try:
                return [r async for r in client.post(endpoint, Document(text=text), parameters=parameters,
                                                     return_responses=True, timeout=timeout)][0]
            except Exception as e:  # returned, so the test sees which caller got what
                return e

        return await asyncio.wait_for(asyncio.gather(*(one(t) for t in texts)), timeout + 10)


def post_all(port: int, endpoint: str, texts: list[str], **kwargs: Any) -> list[Any]:
    return asyncio.run(_post_all(port, endpoint, texts, **kwargs))


def calls(responses: list[Any], name: str = NAME) -> dict[str, list[str]]:
    """call id -> the texts that call was given."""
    found: dict[str, list[str]] = {}
    for response in responses:
        for doc in response.docs:
            found[doc.tags[f'{name}.call']] = doc.tags[f'{name}.texts']
    return found


def test_preferred_batch_size_reached_calls_the_method_once(batched) -> None:
    texts = [f'size-{i}' for i in range(16)]
    responses = post_all(batched.port, '/size', texts)  # the timeout is 60 s: only size triggers
    assert all(not isinstance(r, Exception) for r in responses), responses
    assert sorted(len(t) for t in calls(responses).values()) == [8, 8]
    ids = set()
    for text, response in zip(texts, responses):
        assert [d.text for d in response.docs] == [text.upper()]  # its own document, nobody else's
        assert response.docs[0].tags[f'{NAME}.batch'] == 8
        assert [r.executor for r in response.routes] == [NAME]
        ids.add(response.request_id)
    assert len(ids) == 16  # every caller its own request id


def test_timeout_flushes_a_partial_batch(batched) -> None:
    responses = post_all(batched.port, '/timeout', ['t-a', 't-b', 't-c'])  # preferred size 1000
    assert [r.docs[0].text for r in responses] == ['T-A', 'T-B', 'T-C']
    assert sorted(t for texts in calls(responses).values() for t in texts) == ['t-a', 't-b', 't-c']


def test_200_concurrent_callers_each_get_their_own_documents(batched) -> None:
    texts = [f'caller {i} {"x" * (i % 7)}' for i in range(200)]
    responses = post_all(batched.port, '/size', texts)
    assert [r.docs[0].text for r in responses] == [t.upper() for t in texts]
    assert len({r.request_id for r in responses}) == 200
    assert sorted(len(t) for t in calls(responses).values()) == [8] * 25


def test_requests_with_different_parameters_never_share_a_batch(batched) -> None:
    async def both() -> list[Any]:
        return await asyncio.gather(_post_all(batched.port, '/four', [f'a{i}' for i in range(4)], {'k': 'a'}),
                                    _post_all(batched.port, '/four', [f'b{i}' for i in range(4)], {'k': 'b'}))

    a, b = asyncio.run(both())
    assert sorted(map(sorted, calls(a + b).values())) == [['a0', 'a1', 'a2', 'a3'], ['b0', 'b1', 'b2', 'b3']]
    assert {r.docs[0].tags['k'] for r in a} == {'a'} and {r.docs[0].tags['k'] for r in b} == {'b'}


def test_a_request_larger_than_the_batch_is_split_and_returned_in_order(batched) -> None:
    docs = DocumentArray([Document(text=f'd{i}') for i in range(10)])
    out = Client(port=batched.port).post('/four', docs, parameters={'k': 'big'})
    assert out.texts == [f'D{i}' for i in range(10)]
    assert [d.tags[f'{NAME}.batch'] for d in out] == [4] * 8 + [2, 2]
    out = Client(port=batched.port).post('/all', docs)  # flush_all: everything queued in one call
    assert out.texts == [f'D{i}' for i in range(10)] and {d.tags[f'{NAME}.batch'] for d in out} == {10}


def test_custom_metric_weighs_documents(batched) -> None:
    responses = post_all(batched.port, '/weighted', ['aaaaa', 'bbbbb'])  # 5 + 5 reaches 10
    assert sorted(map(sorted, calls(responses).values())) == [['aaaaa', 'bbbbb']]


def test_a_batch_that_raises_fails_each_of_its_callers_and_the_next_batch_runs(batched) -> None:
    failed = post_all(batched.port, '/fail', ['boom', 'f1', 'f2', 'f3'], parameters={'k': 'fail'})
    for error in failed:
        assert isinstance(error, ExecutorError), error
        assert error.name == 'ValueError' and error.executor == NAME
        assert 'a boom document in this batch' in str(error)
    fine = post_all(batched.port, '/fail', ['g0', 'g1', 'g2', 'g3'], parameters={'k': 'fail'})
    assert [r.docs[0].text for r in fine] == ['G0', 'G1', 'G2', 'G3']
    wrong = post_all(batched.port, '/wrong', ['w0', 'w1'])
    assert all(isinstance(e, ExecutorError) and e.name == 'ValueError' for e in wrong), wrong
    assert 'as many documents as it was given: 2 in, 1 out' in str(wrong[0])


def test_a_caller_that_gives_up_while_queued_is_left_out_of_the_batch(batched, metrics_port: int) -> None:
    # preferred size 2, timeout 60 s: the caller that gave up must not count towards the size
    gave_up = post_all(batched.port, '/slow', ['quitter'], parameters={'case': 'queued'}, timeout=0.5)
    assert isinstance(gave_up[0], Exception)
    # the executor has seen the caller go (its request is no longer pending) before the others come
    assert wait_until(lambda: scrape(metrics_port, 'jina_number_of_pending')[
        ('jina_number_of_pending_requests', None)] == 0, timeout=30) is not None
    responses = post_all(batched.port, '/slow', ['stay-1', 'stay-2'], parameters={'case': 'queued'})
    assert [r.docs[0].text for r in responses] == ['STAY-1', 'STAY-2']
    assert [sorted(t) for t in calls(responses).values()] == [['stay-1', 'stay-2']]


def test_a_caller_that_gives_up_during_the_call_does_not_disturb_the_others(batched, tmp_path: Path) -> None:
    parameters = {'sleep': 2, 'spool': str(tmp_path)}

    async def scenario() -> tuple[Any, list[Any], bool]:
        leaves = asyncio.ensure_future(_post_all(batched.port, '/slow', ['leaves'], parameters))
        waits = asyncio.ensure_future(_post_all(batched.port, '/slow', ['waits'], parameters))
        for _ in range(1500):  # until the batch is being called (bounded: 30 s)
            if (tmp_path / 'called').exists():
                break
            await asyncio.sleep(0.02)
        async with AsyncClient(port=batched.port) as client:
            ready = await client.is_deployment_ready()  # health is answered while the batch runs
        leaves.cancel()
        left = await asyncio.gather(leaves, return_exceptions=True)
        return left[0], await waits, ready

    left, waited, ready = asyncio.run(scenario())
    assert isinstance(left, asyncio.CancelledError)
    assert waited[0].docs[0].text == 'WAITS'
    assert sorted(waited[0].docs[0].tags[f'{NAME}.texts']) == ['leaves', 'waits']
    assert ready
    assert Client(port=batched.port).post('/plain', Document(text='after')).texts == ['AFTER']


def test_sigterm_calls_the_queued_batches_before_the_executor_exits(tmp_path: Path) -> None:
    spool = tmp_path / 'queued'
    spool.mkdir()
    texts = [f'{spool}|q{i}' for i in range(3)]
    with Deployment(uses=Batched, name=NAME, quiet=True, restart=False) as dep:
        results: list[Any] = []
        sender = threading.Thread(target=lambda: results.extend(post_all(dep.port, '/spooled', texts)))
        sender.start()
        # preferred size 1000, timeout 60 s: the three requests wait in the queue
        assert wait_until(lambda: len(list(spool.iterdir())) == 3, timeout=30) is not None
        worker = dep._group.processes[0]
        sent = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.proc.wait(timeout=30) == 0
        exited = time.monotonic() - sent
        sender.join(timeout=30)
    print(f'MEASURE drain.batch_queue: queued=3 batch_timeout_s=60 exited_after_s={exited:.3f} '
          f'served={sum(not isinstance(r, Exception) for r in results)}/3', flush=True)
    assert [r.docs[0].text for r in results] == [t.upper() for t in texts]
    assert [sorted(t) for t in calls(results).values()] == [texts]


# -- configuration --------------------------------------------------------------------------
def test_uses_dynamic_batching_and_executor_yaml_in_a_flow_with_replicas(tmp_path: Path) -> None:
    yml = tmp_path / 'plain.yml'
    yml.write_text('jtype: batching_executors.Plain\ndynamic_batching:\n  /go:\n    preferred_batch_size: 3\n    timeout: 60000\n')
    flow = (Flow(quiet=True)
            .add(name='coded', uses=Plain, replicas=2,
                 uses_dynamic_batching={'/go': {'preferred_batch_size': 3, 'timeout': 60000}})
            .add(name='yamled', uses=str(yml)))
    with flow:
        responses = post_all(flow.port, '/go', ['y0', 'y1', 'y2', 'y3', 'y4', 'y5'])
    assert [r.docs[0].text for r in responses] == ['Y0', 'Y1', 'Y2', 'Y3', 'Y4', 'Y5']
    for name in ('coded', 'yamled'):
        sizes = [r.docs[0].tags[f'{name}.batch'] for r in responses]
        assert sizes == [3] * 6, (name, sizes)  # each replica batches its own traffic
    assert {len(texts) for texts in calls(responses, 'coded').values()} == {3}


def test_flow_yaml_takes_uses_dynamic_batching(tmp_path: Path) -> None:
    yml = tmp_path / 'flow.yml'
    yml.write_text('jtype: Flow\nwith:\n  quiet: true\nexecutors:\n  - name: viayaml\n'
                   '    uses: batching_executors:Plain\n'
                   '    uses_dynamic_batching: {any_endpoint: {preferred_batch_size: 2, timeout: 60000}}\n')
    with Flow.load_config(str(yml)) as flow:
        responses = post_all(flow.port, '/x', ['p', 'q'])
    assert [sorted(t) for t in calls(responses, 'viayaml').values()] == [['p', 'q']]


class _Gen(Executor):
    @requests(on='/g')
    @dynamic_batching(preferred_batch_size=2)
    def gen(self, doc: Document, **kwargs: Any):
        yield doc


@pytest.mark.parametrize('options, message', [
    ({'/go': {'preferred_batch_size': 0}}, 'preferred_batch_size must be an integer >= 1, got 0'),
    ({'/go': {'preferred_batch_size': 2.5}}, 'preferred_batch_size must be an integer >= 1'),
    ({'/go': {'timeout': -1}}, 'timeout must be a number of milliseconds >= 0, got -1'),
    ({'/go': {'timeout': float('inf')}}, 'timeout must be a number of milliseconds >= 0, got inf'),
    ({'/go': {'flush_all': 'yes'}}, 'flush_all must be true or false'),
    ({'/go': {'preferred_size': 4}}, "unknown dynamic batching option(s) ['preferred_size']"),
    ({'/go': {'use_custom_metric': True}}, 'use_custom_metric needs custom_metric'),
    ({'/go': 8}, "dynamic batching of '/go': options must be a mapping, got 8"),
    ({'/stream': {'preferred_batch_size': 2}}, 'dynamic batching does not apply to it'),
    ({'no_such_method': {'preferred_batch_size': 2}}, "dynamic batching for 'no_such_method'"),
])
def test_bad_configuration_is_refused_before_anything_starts(options: dict, message: str) -> None:
    with pytest.raises(BadConfig) as err:
        Deployment(uses=Plain, name='bad', uses_dynamic_batching=options)
    assert message in str(err.value) and 'bad' in str(err.value)


def test_unknown_endpoint_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadConfig, match=r"endpoint '/nope', which it does not serve; it serves \['/all', '/fail'"):
        Deployment(uses=Batched, uses_dynamic_batching={'/nope': {'preferred_batch_size': 2}})
    with pytest.raises(BadConfig, match='does not apply to it'):
        Deployment(uses=_Gen)
    yml = tmp_path / 'bad.yml'
    yml.write_text('jtype: batching_executors.Plain\ndynamic_batching:\n  /go: {timeout: -5}\n')
    with pytest.raises(BadConfig, match="dynamic batching of '/go': timeout must be"):
        Deployment(uses=str(yml))
    with pytest.raises(BadConfig, match='uses_dynamic_batching takes a dict'):
        Deployment(uses=Plain, uses_dynamic_batching=['/go'])


def test_without_batching_nothing_of_it_is_imported() -> None:
    code = ('import sys, plait\n'
            'from plait.executor import NoOpExecutor\n'
            'from plait.serve.worker import ExecutorRunner\n'
            'plait.dynamic_batching\n'
            'plait.Deployment(uses=NoOpExecutor)\n'
            'runner = ExecutorRunner(NoOpExecutor(), "x", False)\n'
            'print(runner.batcher, "plait.serve.batching" in sys.modules)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['None', 'False']


def test_plait_executor_flag_and_debug_log_of_each_batch(port: int) -> None:
    batching = '{"/go": {"preferred_batch_size": 2, "timeout": 60000}}'
    proc = subprocess.Popen([sys.executable, '-m', 'plait.serve.worker', '--uses', 'batching_executors:Plain',
                             '--host', '127.0.0.1', '--port', str(port), '--uses-dynamic-batching', batching],
                            env=script_env(PLAIT_LOG_LEVEL='DEBUG'), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: any('ready at' in x for x in lines) or proc.poll() is not None, 60) is not None
        responses = post_all(port, '/go', ['l0', 'l1'])
        assert [r.docs[0].text for r in responses] == ['L0', 'L1']
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        proc.stdout.close()
    batch_lines = [x for x in lines if 'batch on /go' in x]
    assert len(batch_lines) == 1 and '2 doc(s) from 2 request(s), queued' in batch_lines[0], lines


def test_exported_containers_keep_the_batching_of_the_executor_yaml(tmp_path: Path) -> None:
    config = tmp_path / 'plain.yml'
    config.write_text('jtype: batching_executors.Plain\ndynamic_batching:\n  /go: {preferred_batch_size: 3}\n')
    flow = Flow(quiet=True).add(uses=str(config), name='exported',
                                uses_dynamic_batching={'/go': {'timeout': 50}})
    flow.to_docker_compose_yaml(str(tmp_path / 'out' / 'docker-compose.yml'))
    command = yaml.safe_load((tmp_path / 'out' / 'docker-compose.yml').read_text())['services']['exported']['command']
    given = json.loads(command[command.index('--uses-dynamic-batching') + 1])
    assert given == {'/go': {'preferred_batch_size': 3, 'timeout': 50}}


def test_batch_sizes_and_queueing_times_are_prometheus_metrics(batched, metrics_port: int) -> None:
    before = scrape(metrics_port, 'plait_batch')
    post_all(batched.port, '/size', [f'm{i}' for i in range(8)])
    after = scrape(metrics_port, 'plait_batch')

    def grew(name: str) -> float:
        return after[(name, '/size')] - before.get((name, '/size'), 0)

    assert grew('plait_batch_size_count') == 1  # one call...
    assert grew('plait_batch_size_sum') == 8    # ...of 8 documents
    assert grew('plait_batch_queue_seconds_count') == 8  # each request's wait
