"""Executors the Flow and gateway tests run in worker processes (importable there as
`executors`, since the workers inherit this test process's sys.path)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from plait import Document, DocumentArray, Executor, requests


class Trace(Executor):
    """Appends its name to each document's tags['trace'] and records where it ran."""

    @requests
    def trace(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.tags['trace'] = [*doc.tags.get('trace', []), self.metas.name]
            doc.tags['replica'] = self.runtime_args.replica_id
            doc.tags['shard'] = self.runtime_args.shard_id
            doc.tags['pid'] = os.getpid()


class Stamp(Executor):
    """Sets one field of every document (a branch of a join sets a field the other does not)."""

    def __init__(self, field: str = 'text', value: str = 'stamped', **kwargs: Any):
        super().__init__(**kwargs)
        self.field, self.value = field, value

    @requests
    def stamp(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            setattr(doc, self.field, self.value)


class ShardAppend(Executor):
    """Adds one document named after its shard: ALL polling returns one per shard."""

    @requests
    def add_one(self, docs: DocumentArray, **kwargs: Any) -> None:
        docs.append(Document(id=f'shard-{self.runtime_args.shard_id}', text=self.metas.name))


class Concurrency(Executor):
    """Async and slow: tags each document with how many requests were in flight here when it
    arrived (the peak so far), to observe prefetch."""

    def __init__(self, delay: float = 0.25, **kwargs: Any):
        super().__init__(**kwargs)
        self.delay = delay
        self.in_flight = 0
        self.peak = 0

    @requests
    async def slow(self, docs: DocumentArray, parameters: dict, **kwargs: Any) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for doc in docs:
                doc.tags['peak'] = self.peak
            await asyncio.sleep(float(parameters.get('sleep', self.delay)))
        finally:
            self.in_flight -= 1


class Endpoints(Executor):
    """Serves named endpoints only (no default)."""

    @requests(on='/foo')
    def foo(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.text = f'foo by {self.metas.name}'

    @requests(on=['/bar', '/search'])
    def bar(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.text = f'bar by {self.metas.name}'


class FailInit(Executor):
    """Cannot be built: the Flow must refuse to start and say why."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        raise RuntimeError('cannot load the model: marker-7d1e')


class SlowInit(Executor):
    """Takes far longer to build than any test's timeout_ready."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        time.sleep(60)
