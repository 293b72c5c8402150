"""`plait flow` and `plait deployment` as real processes: they serve until SIGTERM, exit 0 and
leave no process behind; bad input exits 1 with a clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flow_helpers import wait_until
from plait import Client, Document, DocumentArray
from plait.orchestrate.cli import deployment_main, flow_main
from plait.wire.ports import free_port

DATA = Path(__file__).parent / 'data' / 'export'
EXECUTORS = DATA / 'export_executors.py'


def plait(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`plait ARGS` through the command's front end, output captured."""
    return subprocess.Popen([sys.executable, '-m', 'plait.cli.main', *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f'/proc/{current}/task')
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f'/proc/{current}/task/{task}/children') as f:
                    children = [int(p) for p in f.read().split()]
            except OSError:
                continue
            found.update(children)
            todo.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def wait_ready(proc: subprocess.Popen, port: int, kind: str, timeout: float = 60) -> None:
    with Client(host='127.0.0.1', port=port) as client:
        check = client.is_flow_ready if kind == 'flow' else client.is_deployment_ready
        died = lambda: proc.poll() is not None and f'exited with {proc.returncode} before it was ready:\n{proc.stdout.read()}'  # noqa: E731,E501
        if wait_until(lambda: check(timeout=1), timeout, interval=0.2, abort=died) is None:
            pytest.fail(f'not ready within {timeout}s')


def terminate_and_check(proc: subprocess.Popen) -> str:
    """SIGTERM `proc`; assert it exits 0 and every process it started is gone; its output."""
    children = descendants(proc.pid)
    assert children, 'expected the command to run its services as child processes'
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, output
    wait_until(lambda: not any(alive(p) for p in children), 5, interval=0.1)
    assert not [p for p in children if alive(p)], output
    return output


def run_briefly(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'plait.cli.main', *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_flow_serves_a_yaml_until_sigterm(tmp_path):
    port = free_port()
    flow_yml = tmp_path / 'flow.yml'
    flow_yml.write_text(f'''jtype: Flow
with:
  port: {port}
  host: 127.0.0.1
executors:
  - name: tagger
    uses: Tagger
    host: 127.0.0.1
    uses_with:
      suffix: t
    py_modules:
      - {EXECUTORS}
  - name: sharded
    uses: Tagger
    host: 127.0.0.1
    shards: 2
''')
    proc = plait('flow', '--uses', str(flow_yml))
    try:
        wait_ready(proc, port, 'flow')
        with Client(host='127.0.0.1', port=port) as client:
            docs = client.post('/', DocumentArray([Document(text='x')]))
        assert docs[0].text in ('x|t0|0', 'x|t0|1')
    finally:
        output = terminate_and_check(proc)
    assert 'draining' in output and 'stopped' in output


def test_flow_with_a_bad_yaml_exits_1_naming_the_line(tmp_path):
    bad = tmp_path / 'bad.yml'
    bad.write_text('jtype: Flow\nexecutors:\n  - name: a\n    uses: {oops\n  - name: b\n')
    result = run_briefly('flow', '--uses', str(bad))
    assert result.returncode == 1
    assert 'plait flow: error:' in result.stderr and 'invalid YAML at line 5' in result.stderr


def test_flow_errors_are_one_clear_line(tmp_path):
    result = run_briefly('flow', '--uses', str(tmp_path / 'missing.yml'))
    assert result.returncode == 1 and 'cannot read YAML file' in result.stderr
    wrong = tmp_path / 'wrong.yml'
    wrong.write_text('jtype: Flow\nexecutors:\n  - uses: nowhere_module:Nothing\n')
    result = run_briefly('flow', str(wrong))
    assert result.returncode == 1
    assert "cannot import module 'nowhere_module'" in result.stderr
    assert 'Traceback' not in result.stderr


def test_deployment_serves_replicas_from_a_deployment_yaml_until_sigterm(tmp_path):
    port = free_port()
    spec = tmp_path / 'deployment.yml'
    spec.write_text(f'''jtype: Deployment
with:
  uses: Tagger
  py_modules: [{EXECUTORS}]
  uses_with:
    suffix: d
  host: 127.0.0.1
''')
    proc = plait('deployment', '--uses', str(spec), '--port', str(port), '--replicas', '2',
                 '--name', 'tagger')
    try:
        wait_ready(proc, port, 'deployment')
        with Client(host='127.0.0.1', port=port) as client:
            docs = client.post('/', DocumentArray([Document(text='y')]))
        assert docs[0].text == 'y|d0'
    finally:
        terminate_and_check(proc)


def test_deployment_serves_a_class_reference(tmp_path):
    port = free_port()
    env = {'PYTHONPATH': os.pathsep.join([str(DATA), os.environ.get('PYTHONPATH', '')])}
    proc = plait('deployment', '--uses', 'export_executors:Tagger', '--uses-with', '{"suffix": "c"}',
                 '--port', str(port), '--host', '127.0.0.1', env=env)
    try:
        wait_ready(proc, port, 'deployment')
        with Client(host='127.0.0.1', port=port) as client:
            assert client.post('/', DocumentArray([Document(text='z')]))[0].text == 'z|c0'
    finally:
        terminate_and_check(proc)


def test_deployment_with_unknown_executor_exits_1():
    result = run_briefly('deployment', '--uses', 'no_such_module:Executor')
    assert result.returncode == 1
    assert result.stderr.startswith('plait deployment: error:') and 'no_such_module' in result.stderr


def test_help_shows_examples(capsys):
    assert flow_main(['--help']) == 0
    assert 'plait flow --uses flow.yml' in capsys.readouterr().out
    assert deployment_main(['--help']) == 0
    assert 'plait deployment --uses my_executors:Encoder' in capsys.readouterr().out
    assert flow_main([]) == 2
    assert 'give the Flow YAML file' in capsys.readouterr().err
