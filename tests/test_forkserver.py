"""Processes forked from the fork server behave like fresh ones: their own environment and
session, a fallback without it, and nothing outlives a user process killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flow_helpers import wait_until
from plait import Client, Document, Flow
from plait.serve.lifecycle import process_alive

TESTS = Path(__file__).parent


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get('PYTHONPATH', '')]), **extra)


@pytest.mark.parametrize('forkserver', ['1', '0'])
def test_flow_works_with_and_without_the_fork_server(forkserver):
    script = textwrap.dedent('''
        import json
        from plait import Flow, Document
        from worker_executors import WhoAmI
        with Flow(quiet=True, env={'PLAIT_FLOW_MARK': 'yes'}).add(uses=WhoAmI, uses_with={'greeting': 'hey'}) as f:
            doc = f.post('/', Document(text='x'))[0]
            info = f.client.status()
            print(json.dumps({'tags': doc.tags, 'envs': info['envs']}))
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120,
                         env=_env(PLAIT_FORKSERVER=forkserver))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['tags'] == {'name': 'executor0', 'replica': 0, 'shard': 0, 'greeting': 'hey'}
    assert result['envs']['PLAIT_FLOW_MARK'] == 'yes'  # the Flow's env reached the gateway


def test_each_forked_process_has_its_own_session(monkeypatch):
    # executors of a Flow answer _status only with the Flow's secret (plait.auth)
    monkeypatch.setenv('PLAIT_EXECUTOR_SECRET', 'forkserver-test-secret')
    with Flow(quiet=True).add(replicas=2) as f:
        from plait.clients.grpc import GrpcTransport  # noqa: F401
        sessions = set()
        for label in ('executor0/rep-0', 'executor0/rep-1'):
            port = f.deployments['executor0'].worker_ports[0][int(label[-1])]
            sessions.add(Client(port=port, auth_token='forkserver-test-secret').status()['jina']['session-id'])
        sessions.add(f.client.status()['jina']['session-id'])
        assert len(sessions) == 3


def test_nothing_outlives_a_user_process_killed_with_sigkill(tmp_path):
    pids_file = tmp_path / 'pids.json'
    script = textwrap.dedent(f'''
        import json
        from plait import Flow
        f = Flow(quiet=True).add(replicas=2).add()
        with f:
            pids = [p.pid for p in f._group.processes]
            open({str(pids_file)!r}, 'w').write(json.dumps(pids))
            f.block()
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(pids_file.exists, 60, interval=0.05)
        pids = json.loads(pids_file.read_text())
        assert len(pids) == 4 and all(process_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    wait_until(lambda: not any(process_alive(p) for p in pids), 10, interval=0.1)
    left = [p for p in pids if process_alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f'still running after their Flow process was killed: {left}'


def test_post_after_fork_server_restart():
    """If the fork server itself dies, the next Flow starts a new one."""
    from plait.orchestrate.forkserver import ForkServer

    with Flow(quiet=True).add() as f:
        assert f.post('/', Document(text='a')).texts == ['a']
    server = ForkServer._instance
    if server is None:
        pytest.skip('fork server disabled here')
    server.proc.kill()
    server.proc.wait(timeout=10)
    with Flow(quiet=True).add() as f:
        assert f.post('/', Document(text='b')).texts == ['b']
    assert ForkServer._instance is not server


def test_a_fork_server_that_cannot_start_leaves_nothing_behind():
    # a Python that cannot start (no standard library) ends the handshake at once: the socket
    # is closed and the process reaped, so neither ResourceWarning nor an orphan is left
    import gc
    import warnings

    from plait.orchestrate.forkserver import ForkServer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', ResourceWarning)
        with pytest.raises(EOFError):
            ForkServer(dict(os.environ, PYTHONHOME='/nonexistent'))
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
