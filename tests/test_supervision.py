"""Supervision with real processes: a replica killed with SIGKILL is restarted with backoff
while readiness names it as down, then serves again; a replica that keeps crashing is given
up on after the bound; under steady load with two replicas a kill loses no request; Ctrl-C
stops a Flow, and every process it started, whatever those processes are doing.

Each test prints its measurements (`MEASURE ...` lines, see RELIABILITY.md); run with `-s`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flow_helpers import Script, alive, kill9, wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plait import Client, Deployment, Document, DocumentArray, Executor, Flow, requests
from plait.errors import ExecutorError, InternalNetworkError


class WhoServes(Executor):
    """Tags each document with the pid and replica that served it."""

    @requests
    def who(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.tags['pid'] = os.getpid()
            doc.tags['replica'] = self.runtime_args.replica_id


class CrashInitOnceMarked(Executor):
    """Builds fine until `marker` exists; from then on every (re)start crashes in __init__."""

    def __init__(self, marker: str = '', **kwargs: Any):
        super().__init__(**kwargs)
        if marker and os.path.exists(marker):
            raise RuntimeError('crash-loop-marker-5c2a: the model file is corrupt')

    @requests
    def ok(self, docs: DocumentArray, **kwargs: Any) -> None:
        pass


class ExitOnBoom(Executor):
    """`/boom` kills the process from inside a request (a segfault-like crash)."""

    @requests(on='/boom')
    def boom(self, docs: DocumentArray, **kwargs: Any) -> None:
        os._exit(3)

    @requests
    def ok(self, docs: DocumentArray, **kwargs: Any) -> None:
        pass


def measure(name: str, **values: Any) -> None:
    """One line per measurement; RELIABILITY.md is filled from these."""
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)


def gateway_lines(f: Flow) -> list[str]:
    p = f.process_of('gateway')
    return list(p.tail) if p is not None else []


def readiness(port: int) -> str:
    """The gateway's `readiness` health status, asked directly over gRPC."""
    with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service='readiness'),
                                                          timeout=3)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def restarted(f: Flow, label: str, old_pid: int) -> bool:
    """True once `label` runs as a new process that said it is ready."""
    p = f.process_of(label)
    return p is not None and p.pid not in (None, old_pid) and p.ready and p.alive()


@pytest.fixture
def plait_log() -> Iterator[list[str]]:
    """Log lines of plait's loggers in this process (the supervisor runs here)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger('plait')
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_killed_replica_is_restarted_and_readiness_names_it_meanwhile() -> None:
    with Flow(quiet=True).add(uses=WhoServes) as f:
        old = f.process_of('executor0/rep-0')
        old_pid = old.pid
        address = f'127.0.0.1:{f.deployments["executor0"].worker_ports[0][0]}'
        assert f.post('/', Document())[0].tags['pid'] == old_pid
        killed_at = time.monotonic()
        kill9(old_pid)
        down = wait_until(lambda: not f.is_flow_ready(timeout=1), timeout=10)
        assert down is not None, 'readiness still says ready after the only replica was killed'
        down_line = f'executor0 replica 0 at {address} is down ('
        assert wait_until(lambda: any(down_line in line for line in gateway_lines(f)), timeout=10) is not None, \
            gateway_lines(f)
        back = wait_until(lambda: f.is_flow_ready(timeout=1), timeout=30)
        assert back is not None, 'readiness did not recover after the restart:\n' + '\n'.join(gateway_lines(f))
        recovered_after = time.monotonic() - killed_at
        assert readiness(f.port) == 'SERVING'
        assert wait_until(lambda: any(f'executor0 replica 0 at {address} is back' in line
                                      for line in gateway_lines(f)), timeout=10) is not None
        new_pid = f.process_of('executor0/rep-0').pid
        assert new_pid != old_pid and alive(new_pid)
        assert f.post('/', Document())[0].tags['pid'] == new_pid
        served_after = time.monotonic() - killed_at
        measure('supervision.kill9_single_replica', readiness_false_after_s=down,
                readiness_back_after_s=recovered_after, first_request_served_after_s=served_after)


def test_http_readyz_names_the_replica_that_is_down_and_recovers() -> None:
    import httpx

    flow = Flow(quiet=True, protocol=['grpc', 'http']).add(uses=WhoServes, replicas=2)
    flow.add(name='single', uses=WhoServes)
    with flow as f:
        readyz = f'http://127.0.0.1:{f.ports[1]}/readyz'
        assert httpx.get(readyz, timeout=5).status_code == 200
        single = f.process_of('single/rep-0').pid
        address = f'127.0.0.1:{f.deployments["single"].worker_ports[0][0]}'
        killed_at = time.monotonic()
        kill9(single)
        answers: list[httpx.Response] = []

        def unready() -> bool:
            answers.append(httpx.get(readyz, timeout=5))
            return answers[-1].status_code == 503

        down = wait_until(unready, timeout=10)
        assert down is not None
        missing = answers[-1].json()['not_ready']
        assert [(m['deployment'], m['replica'], m['address']) for m in missing] == [('single', 0, address)]
        assert missing[0]['reason']  # and why
        back = wait_until(lambda: httpx.get(readyz, timeout=5).status_code == 200, timeout=30)
        assert back is not None
        back_after = time.monotonic() - killed_at
        # one of two replicas down: the Flow still serves, so it is still ready (the body says which is down)
        victim = f.process_of('executor0/rep-0').pid
        kill9(victim)
        assert wait_until(lambda: any(m['deployment'] == 'executor0' for m in
                                      httpx.get(readyz, timeout=5).json()['not_ready']), timeout=10) is not None
        degraded = httpx.get(readyz, timeout=5)
        assert degraded.status_code == 200 and degraded.json()['ready'] is True
        assert f.is_flow_ready(timeout=2)
        measure('supervision.http_readyz', readyz_503_after_s=down, readyz_200_again_after_s=back_after,
                degraded_status=degraded.status_code)


def test_with_two_replicas_both_serve_again_after_a_restart() -> None:
    with Flow(quiet=True).add(uses=WhoServes, replicas=2) as f:
        client = Client(port=f.port)
        try:
            old_pid = f.process_of('executor0/rep-0').pid
            kill9(old_pid)
            # the other replica keeps the Flow ready and serves everything meanwhile
            assert f.is_flow_ready(timeout=3)
            assert {client.post('/', Document())[0].tags['replica'] for _ in range(5)} == {1}
            back = wait_until(lambda: restarted(f, 'executor0/rep-0', old_pid), timeout=30)
            assert back is not None
            new_pid = f.process_of('executor0/rep-0').pid

            def both_serve() -> bool:
                seen = {client.post('/', Document())[0].tags['pid'] for _ in range(6)}
                return new_pid in seen and f.process_of('executor0/rep-1').pid in seen

            assert wait_until(both_serve, timeout=15, interval=0.1) is not None, \
                'the restarted replica gets no traffic'
            served = Counter(client.post('/', Document())[0].tags['replica'] for _ in range(20))
            assert set(served) == {0, 1}
            measure('supervision.two_replicas_restart', restarted_ready_after_s=back,
                    share_after_restart=dict(served))
        finally:
            client.close()


def test_killed_gateway_is_restarted_on_its_port() -> None:
    with Flow(quiet=True).add(uses=WhoServes) as f:
        old_pid = f.process_of('gateway').pid
        killed_at = time.monotonic()
        kill9(old_pid)
        assert wait_until(lambda: restarted(f, 'gateway', old_pid), timeout=30) is not None
        back = wait_until(lambda: f.is_flow_ready(timeout=1), timeout=30)
        assert back is not None
        assert len(f.post('/', DocumentArray([Document() for _ in range(3)]))) == 3
        measure('supervision.kill9_gateway', serving_again_after_s=time.monotonic() - killed_at)


def test_deployment_restarts_its_killed_replica_on_the_same_port() -> None:
    with Deployment(uses=WhoServes, quiet=True) as dep:
        old_pid = dep._group.by_label('executor/rep-0').pid
        killed_at = time.monotonic()
        kill9(old_pid)
        assert wait_until(lambda: not dep.is_deployment_ready(timeout=1), timeout=10) is not None
        assert wait_until(lambda: dep.is_deployment_ready(timeout=1), timeout=30) is not None
        new_pid = dep._group.by_label('executor/rep-0').pid
        assert new_pid != old_pid
        assert dep.post('/', Document())[0].tags['pid'] == new_pid
        measure('supervision.kill9_deployment_replica', serving_again_after_s=time.monotonic() - killed_at)


def _poster(port: int, stop: threading.Event, stats: dict[str, Any], streamed: bool) -> None:
    """Post until `stop`, checking every response carries its documents back."""
    with Client(port=port) as client:
        n = 0
        while not stop.is_set():
            texts = [f'{n}-{i}' for i in range(3 if streamed else 1)]
            n += 1
            try:
                # 3 docs by 1 per request go through the Call stream; 1 doc is a unary call
                docs = client.post('/', DocumentArray([Document(text=t) for t in texts]), request_size=1,
                                   timeout=30)
            except Exception as e:  # noqa: BLE001  (counted as lost)
                stats['errors'].append(repr(e))
                continue
            if sorted(docs.texts) != sorted(texts):
                stats['errors'].append(f'wrong documents: {docs.texts} for {texts}')
                continue
            stats['requests'] += len(texts)
            for doc in docs:
                stats['pids'][doc.tags['pid']] += 1


def test_no_request_is_lost_when_a_replica_is_killed_under_load() -> None:
    seconds = float(os.environ.get('PLAIT_LOAD_SECONDS', '8'))
    with Flow(quiet=True).add(uses=WhoServes, replicas=2) as f:
        stop = threading.Event()
        stats = [{'requests': 0, 'errors': [], 'pids': Counter()} for _ in range(2)]
        threads = [threading.Thread(target=_poster, args=(f.port, stop, s, streamed), daemon=True)
                   for s, streamed in zip(stats, (False, True))]
        for t in threads:
            t.start()
        try:
            time.sleep(seconds / 4)
            before = sum(s['requests'] for s in stats)
            victim = f.process_of('executor0/rep-0').pid
            killed_at = time.monotonic()
            kill9(victim)
            back = wait_until(lambda: restarted(f, 'executor0/rep-0', victim), timeout=30)
            restarted_after = time.monotonic() - killed_at
            new_pid = f.process_of('executor0/rep-0').pid
            serving_again = wait_until(lambda: any(s['pids'][new_pid] for s in stats), timeout=30)
            serving_after = time.monotonic() - killed_at
            time.sleep(max(0.0, seconds - (time.monotonic() - killed_at) - seconds / 4))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        errors = [e for s in stats for e in s['errors']]
        total = sum(s['requests'] for s in stats)
        pids = sum((s['pids'] for s in stats), Counter())
        measure('supervision.kill9_under_load', requests=total, before_kill=before, lost=len(errors),
                replica_restarted_after_s=restarted_after, restarted_replica_serving_after_s=serving_after,
                served_by_killed=pids[victim], served_by_restarted=pids[new_pid])
        assert back is not None and serving_again is not None
        assert not errors, f'{len(errors)} of {total + len(errors)} requests lost: {errors[:5]}'
        assert total > before > 0
        assert pids[victim] > 0 and pids[new_pid] > 0


def test_replica_crashing_in_init_is_given_up_after_the_bound(tmp_path, plait_log: list[str]) -> None:
    marker = tmp_path / 'corrupt'
    with Flow(quiet=True).add(uses=CrashInitOnceMarked, uses_with={'marker': str(marker)}) as f:
        marker.touch()
        started = time.monotonic()
        kill9(f.process_of('executor0/rep-0').pid)
        given_up = wait_until(lambda: 'executor0/rep-0' in f._group._supervisor.given_up(), timeout=90, interval=0.1)
        assert given_up is not None, '\n'.join(plait_log)
        line = next(x for x in plait_log if 'giving up' in x)
        assert 'executor0/rep-0 exited with code 1 and has restarted 5 times in 60 s: giving up on it' in line
        assert 'crash-loop-marker-5c2a' in line  # the cause, from the replica's own log
        restarts = [x for x in plait_log if x.startswith('executor0/rep-0 (pid') and 'restarting in' in x]
        assert len(restarts) == 5
        assert not f.process_of('executor0/rep-0').alive()
        assert f.is_flow_ready(timeout=2) is False
        time.sleep(1.0)  # no further restart after giving up
        assert not f.process_of('executor0/rep-0').alive()
        measure('supervision.crash_loop_in_init', given_up_after_s=time.monotonic() - started,
                restarts=len(restarts))


def test_replica_exiting_inside_requests_is_given_up_after_the_bound(plait_log: list[str]) -> None:
    with Flow(quiet=True).add(uses=ExitOnBoom) as f:
        client = Client(port=f.port)
        started = time.monotonic()
        crashes = 0
        try:
            while 'executor0/rep-0' not in f._group._supervisor.given_up():
                assert time.monotonic() - started < 90, '\n'.join(plait_log)
                if not f.is_flow_ready(timeout=1):
                    time.sleep(0.1)
                    continue
                with pytest.raises((ExecutorError, InternalNetworkError)):
                    client.post('/boom', Document(), timeout=10)
                crashes += 1
                wait_until(lambda: not f.process_of('executor0/rep-0').alive(), timeout=5)
                # the supervisor saw this death (a restart line, or giving up) before readiness is asked again
                wait_until(lambda n=crashes: sum('restarting in' in x or 'giving up' in x for x in plait_log) >= n,
                           timeout=5)
            line = next(x for x in plait_log if 'giving up' in x)
            assert 'executor0/rep-0 exited with code 3 and has restarted 5 times in 60 s: giving up on it' in line
            assert f.is_flow_ready(timeout=2) is False
            # the gateway still answers, with an error naming the deployment that is down
            with pytest.raises((ExecutorError, InternalNetworkError), match='executor0'):
                client.post('/', Document(), timeout=10)
        finally:
            client.close()
        measure('supervision.crash_loop_in_request', given_up_after_s=time.monotonic() - started,
                crashes=crashes)


CTRL_C_SCRIPT = """
    import json, os, sys, time
    from plait import DocumentArray, Executor, Flow, requests

    class Slow(Executor):
        @requests
        def slow(self, docs: DocumentArray, **kwargs) -> None:
            print('SLOW STARTED', flush=True)
            time.sleep(60)

    class StuckInit(Executor):
        def __init__(self, marker: str = '', **kwargs):
            super().__init__(**kwargs)
            if marker and os.path.exists(marker):
                print('STUCK IN INIT', flush=True)
                time.sleep(60)

    f = Flow().add(uses=Slow, replicas=2).add(uses=StuckInit, uses_with={'marker': sys.argv[1]})
    with f:
        print('PIDS', json.dumps([p.pid for p in f._group.processes]), 'PORT', f.port, flush=True)
        f.block()
    print('EXITED', flush=True)
"""


@pytest.mark.parametrize('state', ['slow request in flight', 'replica restarting, stuck in __init__'])
def test_ctrl_c_stops_the_flow_and_every_process_whatever_they_do(tmp_path, state: str) -> None:
    marker = tmp_path / 'stuck'
    script = Script(CTRL_C_SCRIPT.replace('sys.argv[1]', repr(str(marker))))
    client = None
    descendants: set[int] = set()
    try:
        line = script.wait_for_line('PIDS', timeout=90)
        pids = json.loads(line.split('PIDS', 1)[1].split('PORT')[0])
        port = int(line.rsplit('PORT', 1)[1])
        if state == 'slow request in flight':
            client = Client(port=port)
            threading.Thread(target=_swallow, args=(client.post, '/', Document()), daemon=True).start()
            script.wait_for_line('SLOW STARTED', timeout=30)
        else:
            marker.touch()
            os.kill(pids[2], signal.SIGKILL)  # executor1/rep-0 is restarted and hangs in __init__
            script.wait_for_line('STUCK IN INIT', timeout=30)
        descendants = _descendants(script.proc.pid)
        assert set(pids) - {pids[2]} <= descendants
        sent = time.monotonic()
        script.proc.send_signal(signal.SIGINT)
        code = script.proc.wait(timeout=30)
        took = time.monotonic() - sent
        script.wait_for_line('EXITED', timeout=5)
        # a fork server (if any) notices its parent is gone within a poll interval
        all_gone = wait_until(lambda: not any(alive(p) for p in descendants), timeout=10)
        left = [p for p in descendants if alive(p)]
        measure('supervision.ctrl_c', state=state.replace(' ', '_'), script_exit_s=took,
                processes=len(descendants), all_gone_after_s=all_gone, left=len(left))
        assert code == 0
        assert not left, f'processes left after Ctrl-C: {left}'
        assert took < 5.0, f'Ctrl-C took {took:.1f}s'  # the bound the issue sets
    finally:
        if client is not None:
            client.close()
        for pid in descendants | _descendants(script.proc.pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        script.close()


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if fields[0] != 'Z':
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _swallow(fn: Any, *args: Any) -> None:
    with contextlib.suppress(Exception):  # the Flow is going away under this request
        fn(*args, timeout=60)
