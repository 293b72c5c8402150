"""Drain with real processes: SIGTERM to an executor, to a gateway, to a `plait flow`
process, and `Flow.close()`, each with requests in flight. Health turns NOT_SERVING at once,
new requests go elsewhere, every in-flight request completes, then the process exits
(bounded by its grace period).

Each test prints its measurements (`MEASURE ...` lines, see RELIABILITY.md); run with `-s`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from flow_helpers import REPO, Script, alive, script_env, wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.wire.ports import free_port
from plait.uses import class_reference


class SlowOrFast(Executor):
    """`/slow` sleeps `parameters['sleep']` seconds (async: many at once per replica) after
    dropping a file named after its pid in `spool`; every other endpoint answers at once.
    Both tag documents with the pid that served them."""

    def __init__(self, spool: str = '', **kwargs: Any):
        super().__init__(**kwargs)
        self.spool = spool

    @requests(on='/slow')
    async def slow(self, docs: DocumentArray, parameters: dict, **kwargs: Any) -> None:
        if self.spool:
            Path(self.spool, f'{os.getpid()}-{uuid.uuid4().hex}').touch()
        await asyncio.sleep(float(parameters.get('sleep', 3)))
        for doc in docs:
            doc.tags['pid'] = os.getpid()

    @requests
    def fast(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.tags['pid'] = os.getpid()


class Stuck(Executor):
    """A sync request that outlives any grace period."""

    @requests
    def stuck(self, docs: DocumentArray, **kwargs: Any) -> None:
        print('STUCK REQUEST STARTED', flush=True)
        time.sleep(60)


def measure(name: str, **values: Any) -> None:
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)


def health(port: int, service: str = '') -> str:
    try:
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                              timeout=2)
    except grpc.RpcError as e:
        return e.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def started_on(spool: Path, pid: int | None = None) -> int:
    """How many slow requests started (on `pid`, or anywhere)."""
    return sum(1 for p in spool.iterdir() if pid is None or p.name.startswith(f'{pid}-'))


class InFlight:
    """Requests posted from their own threads, each remembering its documents or its error."""

    def __init__(self, port: int):
        self.client = Client(port=port)
        self.results: list[Any] = []
        self.threads: list[threading.Thread] = []

    def post(self, on: str, n_docs: int = 1, **kwargs: Any) -> None:
        def run() -> None:
            docs = DocumentArray([Document(text=f'{len(self.threads)}-{i}') for i in range(n_docs)])
            try:
                self.results.append(self.client.post(on, docs, request_size=1, timeout=60, **kwargs))
            except Exception as e:  # noqa: BLE001  (reported by the test)
                self.results.append(e)

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float = 60) -> list[Any]:
        for t in self.threads:
            t.join(timeout=timeout)
        return self.results

    def close(self) -> None:
        self.client.close()


def test_sigterm_to_an_executor_drains_it_while_the_other_replica_takes_new_requests(tmp_path) -> None:
    with Flow(quiet=True).add(uses=SlowOrFast, uses_with={'spool': str(tmp_path)}, replicas=2) as f:
        victim = f.process_of('executor0/rep-0')
        victim_pid, other_pid = victim.pid, f.process_of('executor0/rep-1').pid
        victim_port = f.deployments['executor0'].worker_ports[0][0]
        flight = InFlight(f.port)
        try:
            for _ in range(4):
                flight.post('/slow', parameters={'sleep': 3})
            assert wait_until(lambda: started_on(tmp_path) == 4 and started_on(tmp_path, victim_pid) > 0,
                              timeout=20) is not None
            on_victim = started_on(tmp_path, victim_pid)
            sent = time.monotonic()
            os.kill(victim_pid, signal.SIGTERM)
            not_serving = wait_until(lambda: health(victim_port) == 'NOT_SERVING', timeout=5, interval=0.005)
            assert not_serving is not None, health(victim_port)
            new_pids = [f.post('/', Document())[0].tags['pid'] for _ in range(10)]
            assert alive(victim_pid), 'the executor exited before its in-flight requests were done'
            assert set(new_pids) == {other_pid}
            results = flight.join()
            assert not [r for r in results if isinstance(r, Exception)], results
            served_by = [r[0].tags['pid'] for r in results]
            assert served_by.count(victim_pid) == on_victim
            exited = wait_until(lambda: not alive(victim_pid), timeout=15)
            assert exited is not None
            gateway_log = '\n'.join(f.process_of('gateway').tail)
            assert 'executor0 replica 0 at' in gateway_log and 'is down (health is NOT_SERVING)' in gateway_log
            measure('drain.sigterm_executor', in_flight=len(results), in_flight_on_drained=on_victim, lost=0,
                    not_serving_after_s=not_serving, exited_after_s=time.monotonic() - sent,
                    new_requests_to_other_replica=f'{new_pids.count(other_pid)}/10')
        finally:
            flight.close()


def test_executor_exits_when_its_grace_period_is_over_even_if_user_code_is_stuck(port: int) -> None:
    env = script_env()
    proc = subprocess.Popen([sys.executable, '-m', 'plait.serve.worker', '--host', '127.0.0.1',
                             '--port', str(port), '--uses', class_reference(Stuck), '--grace', '1'],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    flight = InFlight(port)
    try:
        assert wait_until(lambda: health(port) == 'SERVING' or proc.poll() is not None, timeout=60) is not None
        flight.post('/')
        assert wait_until(lambda: any('STUCK REQUEST STARTED' in x for x in lines), timeout=10) is not None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        took = time.monotonic() - sent
        results = flight.join(timeout=10)
        measure('drain.executor_grace_over', grace_s=1.0, exited_after_s=took, exit_code=code,
                client_got=type(results[0]).__name__ if results else 'nothing')
        assert any('grace period of 1.0s over with 1 request(s) still running' in x for x in lines), lines
        assert results and isinstance(results[0], Exception)  # the caller is told, not left hanging
    finally:
        flight.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        reader.join(timeout=5)
        proc.stdout.close()


def test_sigterm_to_the_gateway_lets_its_in_flight_request_finish(tmp_path) -> None:
    with Flow(quiet=True).add(uses=SlowOrFast, uses_with={'spool': str(tmp_path)}) as f:
        gateway = f.process_of('gateway')
        old_pid = gateway.pid
        flight = InFlight(f.port)
        try:
            flight.post('/slow', parameters={'sleep': 2})
            flight.post('/slow', n_docs=3, parameters={'sleep': 2})  # a Call stream of 3 requests
            assert wait_until(lambda: started_on(tmp_path) == 4, timeout=20) is not None
            sent = time.monotonic()
            os.kill(old_pid, signal.SIGTERM)
            not_serving = wait_until(lambda: health(f.port) != 'SERVING', timeout=5, interval=0.005)
            results = flight.join()
            done = time.monotonic() - sent
            assert not [r for r in results if isinstance(r, Exception)], results
            assert sorted(len(r) for r in results) == [1, 3]
            assert wait_until(lambda: not alive(old_pid), timeout=15) is not None
            exited = time.monotonic() - sent
            back = wait_until(lambda: f.is_flow_ready(timeout=1), timeout=30)  # restarted by the Flow
            assert back is not None and f.process_of('gateway').pid != old_pid
            assert len(f.post('/', Document())) == 1
            measure('drain.sigterm_gateway', in_flight_requests=4, lost=0, not_serving_after_s=not_serving,
                    in_flight_done_after_s=done, exited_after_s=exited,
                    ready_again_after_s=time.monotonic() - sent)
        finally:
            flight.close()


def test_flow_close_lets_requests_in_flight_from_other_threads_finish(tmp_path) -> None:
    f = Flow(quiet=True).add(uses=SlowOrFast, uses_with={'spool': str(tmp_path)}, replicas=2)
    with f:
        pids = [p.pid for p in f._group.processes]
        flight = InFlight(f.port)
        try:
            for _ in range(3):
                flight.post('/slow', parameters={'sleep': 2})
            flight.post('/slow', n_docs=3, parameters={'sleep': 2})
            assert wait_until(lambda: started_on(tmp_path) == 6, timeout=20) is not None
            sent = time.monotonic()
            f.close()
            closed = time.monotonic() - sent
            results = flight.join()
        finally:
            flight.close()
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r) for r in results) == [1, 1, 1, 3]
    assert not any(alive(p) for p in pids)
    measure('drain.flow_close', in_flight_requests=6, lost=0, close_took_s=closed)


FLOW_YAML = """
jtype: Flow
with:
  port: {port}
  quiet: true
executors:
  - name: slow
    uses: test_drain:SlowOrFast
    uses_with:
      spool: {spool}
"""


def test_sigterm_to_plait_flow_drains_in_flight_requests(tmp_path) -> None:
    port = free_port()
    spool = tmp_path / 'spool'
    spool.mkdir()
    config = tmp_path / 'flow.yml'
    config.write_text(FLOW_YAML.format(port=port, spool=spool))
    plait = Path(sys.executable).parent / 'plait'
    proc = subprocess.Popen([str(plait), 'flow', '--uses', str(config)], cwd=REPO,
                            env=script_env(PYTHONPATH=os.pathsep.join([str(REPO / 'tests'), str(REPO)])),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    flight = InFlight(port)
    try:
        assert wait_until(lambda: flight.client.is_flow_ready(timeout=1) or proc.poll() is not None,
                          timeout=90, interval=0.2) is not None
        assert proc.poll() is None, ''.join(lines)
        flight.post('/slow', parameters={'sleep': 2})
        flight.post('/slow', n_docs=2, parameters={'sleep': 2})
        assert wait_until(lambda: started_on(spool) == 3, timeout=20) is not None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        results = flight.join()
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(len(r) for r in results) == [1, 2]
        assert code == 0, ''.join(lines)
        measure('drain.sigterm_plait_flow', in_flight_requests=3, lost=0, exited_after_s=took)
    finally:
        flight.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        reader.join(timeout=5)
        proc.stdout.close()


def test_sigterm_to_a_with_flow_script_drains_like_plait_flow(tmp_path) -> None:
    spool = tmp_path / 'spool'
    spool.mkdir()
    script = Script(f"""
        from plait import Flow
        from test_drain import SlowOrFast

        with Flow(quiet=True).add(uses=SlowOrFast, uses_with={{'spool': {str(spool)!r}}}) as f:
            print('PORT', f.port, flush=True)
            f.block()
        print('EXITED', flush=True)
        """)
    flight = None
    try:
        port = int(script.wait_for_line('PORT', timeout=90).split()[1])
        flight = InFlight(port)
        flight.post('/slow', parameters={'sleep': 2})
        assert wait_until(lambda: started_on(spool) == 1, timeout=20) is not None
        sent = time.monotonic()
        code = script.stop(signal.SIGTERM)
        took = time.monotonic() - sent
        results = flight.join()
        assert not [r for r in results if isinstance(r, Exception)], results
        assert code == 0
        script.wait_for_line('EXITED', timeout=5)
        measure('drain.sigterm_with_flow_script', in_flight_requests=1, lost=0, exited_after_s=took)
    finally:
        if flight is not None:
            flight.close()
        script.close()
