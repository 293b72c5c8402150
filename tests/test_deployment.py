"""Deployment end to end: start/ready/stop, posting with the plait Client, replicas and load
balancing, failures (crash at start, kill -9, bad uses, port in use, bad YAML), and the
seed snippets run as users run them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from worker_executors import (Appender, CrashOnInit, FailingExecutor, Poem, ResultsExecutor, SlowExecutor,
                              TypedExecutor, WhoAmI)

from plait import Client, Deployment, Document, DocumentArray
from plait.errors import BadConfig, ExecutorError, InternalNetworkError, RuntimeFailedToStart, UsesNotFound
from plait.wire.ports import free_port

TESTS = Path(__file__).parent


def run_script(code: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_deployment_serves_and_reports_readiness(port):
    dep = Deployment(uses=Appender, port=port, quiet=True)
    with dep:
        assert dep.is_deployment_ready()
        assert Client(port=port).is_deployment_ready()
        docs = Client(port=port).post(on='/')
        assert docs.texts == ['foo was called']
        many = dep.post('/', inputs=[Document(text=str(i)) for i in range(250)], request_size=100)
        assert len(many) == 250 + 3  # one doc appended per request of 100
    assert not dep.is_deployment_ready()
    assert not Client(port=port).is_deployment_ready()


def test_executor_knows_its_name_replica_and_arguments(port):
    with Deployment(uses=WhoAmI, uses_with={'greeting': 'hello'}, name='who', port=port, quiet=True) as dep:
        doc = dep.post('/', inputs=Document(text='x'))[0]
    assert doc.tags == {'name': 'who', 'replica': 0, 'shard': 0, 'greeting': 'hello'}


def test_replicas_are_load_balanced_and_survive_a_kill(port):
    with Deployment(uses=WhoAmI, replicas=2, port=port, quiet=True, restart=False) as dep:
        client = Client(port=port)
        replicas = {client.post('/', inputs=Document())[0].tags['replica'] for _ in range(10)}
        assert replicas == {0, 1}
        victim = dep._group.by_label('executor/rep-0')
        os.kill(victim.pid, signal.SIGKILL)
        served = [client.post('/', inputs=Document())[0].tags['replica'] for _ in range(10)]
        assert served == [1] * 10


def test_killed_single_replica_gives_a_clear_error(port):
    with Deployment(uses=WhoAmI, port=port, quiet=True, restart=False) as dep:
        os.kill(dep._group.processes[0].pid, signal.SIGKILL)
        dep._group.processes[0].proc.wait(timeout=10)
        with pytest.raises(InternalNetworkError) as err:
            Client(port=port).post('/', inputs=Document(), timeout=5)
        assert f'127.0.0.1:{port}' in str(err.value)
        assert not dep.is_deployment_ready()


def test_executor_error_reaches_the_client_and_deployment_keeps_serving(port):
    with Deployment(uses=FailingExecutor, name='failer', port=port, quiet=True) as dep:
        with pytest.raises(ExecutorError) as err:
            dep.post('/fail', inputs=Document())
        assert err.value.name == 'ZeroDivisionError' and err.value.executor == 'failer'
        assert 'cannot divide the docs' in str(err.value)
        errors = []
        dep.post('/fail', inputs=Document(), on_error=lambda resp: errors.append(resp.status.exception.name))
        assert errors == ['ZeroDivisionError']
        assert dep.post('/ok', inputs=Document()).texts == ['ok']


def test_dict_results_come_back_in_parameters(port):
    with Deployment(uses=ResultsExecutor, name='counter', port=port, quiet=True) as dep:
        responses = dep.post('/count', inputs=[Document(), Document()], parameters={'echo': 'e'},
                             return_responses=True)
    assert responses[0].parameters['__results__'] == {'counter/rep-0': {'count': 2, 'echo': 'e'}}  # as Jina keys it


def test_typed_documents_in_and_out(port):
    from docarray import DocList
    from worker_executors import Summary

    with Deployment(uses=TypedExecutor, port=port, quiet=True) as dep:
        out = dep.post('/summarize', inputs=DocList[Poem]([Poem(title='ode', lines=14)]),
                       return_type=DocList[Summary])
    assert out[0].title == 'ODE' and out[0].length == 14


def test_crash_at_start_names_the_executor_and_leaves_nothing(port):
    dep = Deployment(uses=CrashOnInit, name='fragile', port=port, quiet=True)
    started = time.monotonic()
    with pytest.raises(RuntimeFailedToStart) as err:
        dep.start()
    assert time.monotonic() - started < 60
    message = str(err.value)
    assert 'fragile' in message and 'the model file is missing' in message
    assert not dep.is_deployment_ready()


def test_uses_not_importable_fails_before_starting():
    with pytest.raises(UsesNotFound, match="cannot import module 'no_such_module'"):
        Deployment(uses='no_such_module:Thing')
    with pytest.raises(UsesNotFound, match='no such YAML file'):
        Deployment(uses='missing.yml')


def test_port_in_use_is_reported(port):
    with Deployment(uses=WhoAmI, port=port, quiet=True):
        with pytest.raises(RuntimeFailedToStart, match=f'port {port} is already in use'):
            Deployment(uses=WhoAmI, port=port, quiet=True).start()


def test_yaml_with_a_typo_is_a_clear_error(tmp_path):
    bad = tmp_path / 'exec.yml'
    bad.write_text('jtype: WhoAmI\nwith:\n  greeting: [unclosed\n')
    with pytest.raises(BadConfig, match='invalid YAML at line'):
        Deployment(uses=str(bad))
    unknown = tmp_path / 'exec2.yml'
    unknown.write_text('jtype: WhoAmI\nwiht:\n  greeting: hi\n')
    with pytest.raises(BadConfig, match="unknown key"):
        Deployment(uses=str(unknown))


def test_uses_yaml_with_py_modules(tmp_path, port):
    (tmp_path / 'my_exec.py').write_text(textwrap.dedent('''
        from plait import Executor, requests

        class Shouter(Executor):
            def __init__(self, suffix='!', **kwargs):
                super().__init__(**kwargs)
                self.suffix = suffix

            @requests
            def shout(self, docs, **kwargs):
                for doc in docs:
                    doc.text = doc.text.upper() + self.suffix
    '''))
    (tmp_path / 'shout.yml').write_text('jtype: Shouter\nwith:\n  suffix: "!!"\npy_modules:\n  - my_exec.py\n')
    with Deployment(uses=str(tmp_path / 'shout.yml'), port=port, quiet=True) as dep:
        assert dep.post('/', inputs=Document(text='hey')).texts == ['HEY!!']


def test_seed_deployment_readiness_snippet():
    out = run_script('''
        from plait import Deployment

        dep = Deployment()

        with dep:
            print(dep.is_deployment_ready())

        print(dep.is_deployment_ready())
    ''')
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ['True', 'False']


def test_seed_foo_executor_snippet_without_main_guard():
    port = free_port()
    out = run_script(f'''
        from plait import Client, Document, DocumentArray, Executor, Deployment, requests


        class FooExecutor(Executor):
            @requests
            def foo(self, docs: DocumentArray, **kwargs):
                docs.append(Document(text='foo was called'))


        dep = Deployment(port={port}, uses=FooExecutor)
        with dep:
            client = Client(port={port})
            docs = client.post(on='/')
            print(docs.texts)
    ''')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['foo was called']"


def test_sigterm_to_a_blocking_deployment_stops_everything():
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get('PYTHONPATH', '')]))
    script = textwrap.dedent(f'''
        from plait import Deployment
        from worker_executors import WhoAmI
        with Deployment(uses=WhoAmI, port={port}, replicas=2, quiet=True) as dep:
            print('READY', flush=True)
            dep.block()
        print('DONE', flush=True)
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == 'READY'
        assert Client(port=port).is_deployment_ready()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert 'DONE' in out and proc.returncode == 0
        assert not Client(port=port).is_deployment_ready(timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_slow_request_with_client_timeout(port):
    from plait.errors import RequestTimeout

    with Deployment(uses=SlowExecutor, uses_with={'seconds': 2}, port=port, quiet=True) as dep:
        with pytest.raises(RequestTimeout):
            dep.post('/', inputs=Document(), timeout=0.3)
        assert dep.is_deployment_ready()
        assert dep.post('/', inputs=Document(), parameters={'seconds': 0})[0].tags == {'slept': True}


def test_readiness_probes_are_false_when_nothing_listens():
    port = free_port()
    client = Client(port=port)
    assert client.is_deployment_ready() is False
    assert client.is_flow_ready() is False
    assert client.dry_run() is False
    assert DocumentArray is not None


def test_typed_executor_defined_in_a_script():
    """DocList[MyDoc] annotations of a class from __main__ survive the trip to the worker."""
    out = run_script('''
        from docarray import BaseDoc, DocList
        from plait import Deployment, Executor, requests

        class MyDoc(BaseDoc):
            text: str = ''

        class Out(BaseDoc):
            n: int = 0

        class Typed(Executor):
            @requests(on='/x')
            def x(self, docs: DocList[MyDoc], **kwargs) -> DocList[Out]:
                return DocList[Out]([Out(n=len(d.text)) for d in docs])

        with Deployment(uses=Typed, quiet=True) as dep:
            print(dep.post('/x', DocList[MyDoc]([MyDoc(text='abc')]), return_type=DocList[Out])[0].n)
    ''')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '3'
