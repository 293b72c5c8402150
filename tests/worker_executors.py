"""Executors used by the worker and Deployment tests (importable by name in worker processes)."""

from __future__ import annotations

import time
from typing import Optional

from docarray import BaseDoc, DocList

from plait import Document, DocumentArray, Executor, requests


class SlowExecutor(Executor):
    """Sleeps `seconds` (parameters may override) in a sync method, then tags the docs;
    `parameters['started']`, a path, is created as the method starts (tests wait on it)."""

    def __init__(self, seconds: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds

    @requests
    def slow(self, docs: DocumentArray, parameters: dict, **kwargs):
        if parameters.get('started'):
            open(parameters['started'], 'w').close()
        time.sleep(float(parameters.get('seconds', self.seconds)))
        for doc in docs:
            doc.tags['slept'] = True


class FailingExecutor(Executor):
    @requests(on='/fail')
    def fail(self, docs, **kwargs):
        raise ZeroDivisionError('cannot divide the docs', 42)

    @requests(on='/ok')
    def ok(self, docs, **kwargs):
        for doc in docs:
            doc.text = 'ok'


class CrashOnInit(Executor):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        raise RuntimeError('the model file is missing: /nowhere/model.bin')


class WhoAmI(Executor):
    """Tags each doc with where it was served."""

    def __init__(self, greeting: str = 'hi', **kwargs):
        super().__init__(**kwargs)
        self.greeting = greeting

    @requests
    def who(self, docs, **kwargs):
        for doc in docs:
            doc.tags.update(name=self.runtime_args.name, replica=self.runtime_args.replica_id,
                            shard=self.runtime_args.shard_id, greeting=self.greeting)


class ResultsExecutor(Executor):
    @requests(on='/count')
    def count(self, docs, parameters, **kwargs):
        return {'count': len(docs), 'echo': parameters.get('echo')}


class Poem(BaseDoc):
    title: str
    lines: int = 0
    author: Optional[str] = None


class Summary(BaseDoc):
    title: str
    length: int


class TypedExecutor(Executor):
    @requests(on='/summarize')
    def summarize(self, docs: DocList[Poem], **kwargs) -> DocList[Summary]:
        return DocList[Summary]([Summary(title=d.title.upper(), length=d.lines) for d in docs])


class AsyncEcho(Executor):
    @requests
    async def echo(self, docs, **kwargs):
        for doc in docs:
            doc.text = f'async {doc.text}'


class Appender(Executor):
    @requests
    def foo(self, docs: DocumentArray, **kwargs):
        docs.append(Document(text='foo was called'))
