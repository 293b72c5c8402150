"""A Deployment as Jina users write it: `protocol='http' | 'websocket' | [...]` (with `port` or
`ports` lists) served exactly as a Flow's gateway serves them, `include_gateway`, `Executor.serve`
in a user's script, and `to_kubernetes_yaml` / `to_docker_compose_yaml`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import yaml
from docarray import DocList
from flow_helpers import wait_until
from worker_executors import Appender, Poem, Summary, TypedExecutor

from plait import Client, Deployment
from plait.errors import BadConfig
from plait.wire.ports import free_port

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS / 'data' / 'export'))  # export_executors, as tests/test_export.py uses it


def test_http_deployment_serves_the_gateway_routes(port: int) -> None:
    with Deployment(uses=TypedExecutor, protocol='http', port=port, quiet=True) as dep:
        base = f'http://127.0.0.1:{port}'
        assert httpx.get(f'{base}/').json() == {}
        assert httpx.get(f'{base}/readyz').status_code == 200
        assert httpx.get(f'{base}/dry_run').json() == {'code': 0, 'description': '', 'exception': None}
        openapi = httpx.get(f'{base}/openapi.json').json()
        assert '/post' in openapi['paths'] and 'Poem' in str(openapi['components']['schemas'])
        answer = httpx.post(f'{base}/post', json={'data': [{'title': 'ode', 'lines': 3}],
                                                  'execEndpoint': '/summarize'})
        assert answer.status_code == 200, answer.text
        assert answer.json()['data'][0] == {**answer.json()['data'][0], 'title': 'ODE', 'length': 3}
        assert dep.is_deployment_ready()
        assert Client(port=port, protocol='http').is_deployment_ready()
        summary = dep.post('/summarize', [Poem(title='x', lines=2)], return_type=DocList[Summary])  # over http
        assert (summary[0].title, summary[0].length) == ('X', 2)


def test_protocol_and_port_lists_serve_each_protocol() -> None:
    ports = [free_port(), free_port(), free_port()]
    with Deployment(uses=Appender, protocol=['grpc', 'http', 'websocket'], port=ports, quiet=True) as dep:
        for protocol, number in zip(['grpc', 'http', 'websocket'], ports):
            with Client(port=number, protocol=protocol) as client:
                assert client.post('/').texts == ['foo was called'], protocol
        assert [p for p, _ in dep._public()] == ['grpc', 'http', 'websocket']


def test_ports_and_protocols_spellings() -> None:
    ports = [free_port(), free_port()]
    with Deployment(uses=Appender, protocols=['websocket', 'grpc'], ports=ports, include_gateway=False,
                    quiet=True):
        with Client(port=ports[0], protocol='websocket') as client:
            assert client.post('/').texts == ['foo was called']
        with Client(port=ports[1]) as client:
            assert client.post('/').texts == ['foo was called']


@pytest.mark.parametrize('options, message', [
    ({'protocol': ['grpc', 'http'], 'port': [1]}, r'2 protocol\(s\) but 1 port\(s\)'),
    ({'protocol': 'graphql'}, "protocol='graphql': use grpc, http or websocket"),
    ({'protocol': ['http', 'http'], 'port': [1, 2]}, 'each protocol once'),
    ({'port': 1, 'ports': [2]}, 'give port or ports, not both'),
])
def test_bad_protocol_and_port_lists_are_refused(options: dict, message: str) -> None:
    with pytest.raises(BadConfig, match=message):
        Deployment(uses=Appender, quiet=True, **options)


def _user_script(tmp_path: Path, body: str) -> Path:
    (tmp_path / 'my_exec.py').write_text(textwrap.dedent('''\
        from plait import Document, DocumentArray, Executor, requests


        class Hello(Executor):
            @requests
            def hello(self, docs: DocumentArray, **kwargs):
                docs.append(Document(text='hello from serve'))
        '''))
    script = tmp_path / 'main.py'
    script.write_text(textwrap.dedent(body))
    return script


def _wait_ready(client: Client, proc: subprocess.Popen, seconds: float = 60) -> None:
    took = wait_until(lambda: client.is_deployment_ready(timeout=1), seconds, interval=0.2,
                      abort=lambda: proc.poll() is not None and proc.communicate())
    assert took is not None, 'the script did not start serving'


def test_executor_serve_blocks_and_serves_until_sigterm(tmp_path: Path, port: int) -> None:
    script = _user_script(tmp_path, f'''\
        from my_exec import Hello

        if __name__ == '__main__':
            Hello.serve(port={port}, protocol='http', quiet=True)
            print('serve returned')
        ''')
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        with Client(port=port, protocol='http') as client:
            _wait_ready(client, proc)
            assert client.post('/').texts == ['hello from serve']
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert 'serve returned' in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_executor_serve_stops_on_its_stop_event_and_refuses_unknown_options(tmp_path: Path, port: int) -> None:
    script = _user_script(tmp_path, f'''\
        import threading
        from plait import Client
        from plait.errors import UnknownOption
        from my_exec import Hello

        try:
            Hello.serve(port={port}, reload=True)
        except UnknownOption as e:
            print('refused:', e)

        stop = threading.Event()

        def use_then_stop():
            client = Client(port={port})
            while not client.is_deployment_ready(timeout=1):
                pass
            print(client.post('/').texts)
            stop.set()

        threading.Thread(target=use_then_stop, daemon=True).start()
        Hello.serve(port={port}, stop_event=stop, quiet=True)
        print('stopped')
        ''')
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["refused: Deployment(name='executor'): not supported by plait: reload",
                                       "['hello from serve']", 'stopped']


def test_deployment_exports_to_kubernetes_and_compose(tmp_path: Path) -> None:
    dep = Deployment(uses='export_executors:Tagger', name='tagger', replicas=2, protocol='http', port=8000,
                     quiet=True)
    written = dep.to_kubernetes_yaml(str(tmp_path / 'k8s'))
    manifests = [doc for path in written if path.endswith('.yml') for doc in yaml.safe_load_all(Path(path).read_text())]
    kinds = {(m['kind'], m['metadata']['name']) for m in manifests if m}
    assert {('Deployment', 'tagger'), ('Service', 'tagger'), ('Deployment', 'gateway'),
            ('Service', 'gateway')} <= kinds
    gateway = next(m for m in manifests if m and m['kind'] == 'Deployment' and m['metadata']['name'] == 'gateway')
    args = gateway['spec']['template']['spec']['containers'][0]['args']
    assert args[args.index('--protocol') + 1] == 'http' and args[args.index('--port') + 1] == '8000'
    tagger = next(m for m in manifests if m and m['kind'] == 'Deployment' and m['metadata']['name'] == 'tagger')
    assert tagger['spec']['replicas'] == 2

    compose = tmp_path / 'docker-compose.yml'
    dep.to_docker_compose_yaml(str(compose))
    services = yaml.safe_load(compose.read_text())['services']
    assert {'gateway', 'tagger-rep-0', 'tagger-rep-1'} <= set(services)
