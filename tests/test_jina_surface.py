"""The smaller surface Jina users lean on, each as a user's script run in a fresh process
against real servers: CRUD shortcuts, `Client(asyncio=True)`, `ports=` with protocol lists,
`__results__` keyed as Jina keys it, one document posted over HTTP, `requests_by_class`, the
exceptions Jina users catch, and `uses_metas={'name': ...}` beside `name=`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plait import Executor, requests

TESTS = Path(__file__).parent

CRUD_EXECUTOR = '''
from plait import Document, DocumentArray, Executor, requests


class Crud(Executor):
    @requests(on=['/index', '/search', '/update', '/delete'])
    def crud(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.text = f'{doc.text}:{self.metas.name}'
        return {'seen': len(docs)}

    @requests(on='/fail')
    def fail(self, docs, **kwargs):
        raise ValueError('no')
'''


def run_user_script(tmp_path: Path, body: str, timeout: float = 180) -> list[str]:
    (tmp_path / 'crud_exec.py').write_text(CRUD_EXECUTOR)
    script = tmp_path / 'main.py'
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_crud_shortcuts_results_and_ports_lists(tmp_path: Path) -> None:
    lines = run_user_script(tmp_path, '''\
        import asyncio
        from plait import Client, Deployment, Document, Flow
        from plait.wire.ports import free_port
        from crud_exec import Crud

        grpc_port, http_port = free_port(), free_port()
        f = Flow(protocol=['grpc', 'http'], ports=[grpc_port, http_port], quiet=True).add(uses=Crud, name='crud')
        with f:
            print('flow', [d.text for d in f.index(inputs=[Document(text='a')])])
            http = Client(port=http_port, protocol='http')
            print('http', http.search(inputs=[Document(text='b')]).texts)
            responses = Client(port=grpc_port).update(inputs=[Document(text='c')], return_responses=True)
            print('results', responses[0].parameters['__results__'])

            async def main():
                client = Client(port=grpc_port, asyncio=True)
                async for docs in client.delete(inputs=[Document(text='d'), Document(text='e')], request_size=1):
                    print('async', docs.texts)
                await client.close()
            asyncio.run(main())

        with Deployment(uses=Crud, name='outer', uses_metas={'name': 'inner'}, quiet=True) as dep:
            print('metas', dep.delete(inputs=Document(text='x')).texts)
        ''')
    assert lines == ["flow ['a:crud']", "http ['b:crud']", "results {'crud/rep-0': {'seen': 1.0}}",
                     "async ['d:crud']", "async ['e:crud']", "metas ['x:inner']"]


def test_one_document_over_http_and_requests_by_class(tmp_path: Path) -> None:
    lines = run_user_script(tmp_path, '''\
        import httpx
        from plait import Deployment
        from crud_exec import Crud

        print(sorted(Crud.requests_by_class['Crud']), Crud.requests_by_class['Crud']['/index'] is Crud.crud)
        with Deployment(uses=Crud, name='crud', protocol='http', quiet=True) as dep:
            answer = httpx.post(f'http://127.0.0.1:{dep.port}/post',
                                json={'execEndpoint': '/index', 'data': {'text': 'one'}})
            print(answer.status_code, [d['text'] for d in answer.json()['data']])
        ''')
    assert lines == ["['/delete', '/fail', '/index', '/search', '/update'] True", "200 ['one:crud']"]


def test_the_exceptions_jina_users_catch(tmp_path: Path) -> None:
    lines = run_user_script(tmp_path, '''\
        from plait import Client, Deployment, Executor
        from plait.excepts import BadServer, BaseJinaException, RuntimeFailToStart
        from plait.wire.ports import free_port
        from crud_exec import Crud


        class Broken(Executor):
            def __init__(self, **kwargs):
                raise RuntimeError('cannot start')


        with Deployment(uses=Crud, quiet=True) as dep:
            try:
                dep.post('/fail')
            except BadServer as e:
                print('BadServer', isinstance(e, BaseJinaException))
        try:
            Client(port=free_port()).post('/')
        except ConnectionError:
            print('ConnectionError')
        try:
            with Deployment(uses=Broken, quiet=True, timeout_ready=30000):
                pass
        except RuntimeFailToStart:
            print('RuntimeFailToStart')
        ''')
    assert lines == ['BadServer True', 'ConnectionError', 'RuntimeFailToStart']


def test_an_endpoint_taking_doc_and_docs_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r'^Both.both: an endpoint takes `docs` \(a batch\) or `doc` '):
        class Both(Executor):
            @requests
            def both(self, doc, docs, **kwargs):
                pass
