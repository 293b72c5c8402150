"""The command line finds user code the way `uvicorn mod:app` does: `uses: mymod:MyExec` with
mymod.py beside the YAML (whatever the current directory), or in the current directory; and
says where it looked when it cannot find it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from flow_helpers import wait_until

from plait import Client

PLAIT = str(Path(sys.executable).parent / 'plait')  # the console script, as users run it

MYMOD = '''\
from plait import Document, DocumentArray, Executor, requests


class MyExec(Executor):
    @requests
    def hello(self, docs: DocumentArray, **kwargs):
        docs.append(Document(text='found mymod'))
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: mymod.py and flow.yml beside it; the commands run from another folder."""
    folder = tmp_path / 'project'
    folder.mkdir()
    (folder / 'mymod.py').write_text(MYMOD)
    (tmp_path / 'elsewhere').mkdir()
    return folder


def _flow_yaml(folder: Path, port: int, uses: str = 'mymod:MyExec') -> Path:
    path = folder / 'flow.yml'
    path.write_text(textwrap.dedent(f'''\
        jtype: Flow
        with:
          port: {port}
        executors:
          - name: hello
            uses: {uses}
        '''))
    return path


def _serve(argv: list[str], cwd: Path, port: int, protocol: str = 'grpc', ready: str = 'flow') -> None:
    """Run a serving command, post to it once it is ready, stop it with SIGTERM (exit 0)."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        with Client(port=port, protocol=protocol) as client:
            probe = client.is_flow_ready if ready == 'flow' else client.is_deployment_ready
            took = wait_until(lambda: probe(timeout=1), 60, 0.2,
                              abort=lambda: proc.poll() is not None and proc.communicate())
            assert took is not None, 'did not become ready within 60 s'

            assert client.post('/').texts == ['found mymod']
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_plait_flow_finds_the_module_beside_the_yaml(project: Path, port: int) -> None:
    flow = _flow_yaml(project, port)
    _serve([PLAIT, 'flow', str(flow)], project.parent / 'elsewhere', port)


def test_plait_deployment_and_executor_find_the_module_in_the_current_directory(project: Path, port: int) -> None:
    _serve([PLAIT, 'deployment', '--uses', 'mymod:MyExec', '--port', str(port), '--quiet'], project, port,
           ready='deployment')
    _serve([PLAIT, 'executor', '--uses', 'mymod:MyExec', '--port', str(port), '--host', '127.0.0.1'], project,
           port, ready='deployment')


def test_plait_export_finds_the_module_beside_the_yaml(project: Path, port: int) -> None:
    flow = _flow_yaml(project, port)
    out = project.parent / 'k8s'
    done = subprocess.run([PLAIT, 'export', 'kubernetes', str(flow), str(out)], cwd=project.parent / 'elsewhere',
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / 'plait-app' / 'mymod.py').read_text() == MYMOD
    manifests = [d for p in out.rglob('*.yml') for d in yaml.safe_load_all(p.read_text()) if d]
    args = [c['args'] for m in manifests if m['kind'] == 'Deployment'
            for c in m['spec']['template']['spec']['containers']]
    assert ['executor', '--uses', 'mymod:MyExec'] in [a[:3] for a in args]


def test_a_module_nowhere_is_refused_saying_where_it_looked(project: Path, port: int) -> None:
    flow = _flow_yaml(project, port, uses='nomod:MyExec')
    elsewhere = project.parent / 'elsewhere'
    done = subprocess.run([PLAIT, 'flow', str(flow)], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert (f"plait flow: error: uses='nomod:MyExec': cannot import module 'nomod' (No module named 'nomod'; "
            f'looked in {project}, {elsewhere} and the Python path)') in done.stderr
