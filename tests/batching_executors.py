"""Executors with dynamic batching for tests/test_batching.py (importable in worker processes
as `batching_executors`). Every call tags its documents with a call id, the batch size and the
texts it was given, and upper-cases each text."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from plait import Document, DocumentArray, Executor, dynamic_batching, requests


def record(name: str, docs: DocumentArray) -> None:
    call, texts = uuid.uuid4().hex, [d.text for d in docs]
    for doc in docs:
        doc.tags[f'{name}.call'] = call
        doc.tags[f'{name}.batch'] = len(docs)
        doc.tags[f'{name}.texts'] = texts
        doc.tags[f'{name}.pid'] = os.getpid()
        doc.text = (doc.text or '').upper()


def text_length(doc: Any) -> int:
    return len(doc.text or '')


def spooled_weight(doc: Any) -> int:
    """Weight 1, and a file in the folder named by the text's prefix: the test sees that the
    request reached the queue."""
    folder, _, _ = (doc.text or '').partition('|')
    Path(folder, uuid.uuid4().hex).touch()
    return 1


class Batched(Executor):
    @requests(on='/size')
    @dynamic_batching(preferred_batch_size=8, timeout=60_000)
    def size(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @dynamic_batching(preferred_batch_size=1000, timeout=50)  # above @requests: Jina allows both orders
    @requests(on='/timeout')
    def timeout(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @requests(on=['/four', '/fail'])
    @dynamic_batching(preferred_batch_size=4, timeout=60_000)
    def four(self, docs: DocumentArray, parameters: dict, **kwargs: Any) -> None:
        if any((d.text or '').startswith('boom') for d in docs):
            raise ValueError('a boom document in this batch')
        record(self.metas.name, docs)
        for doc in docs:
            doc.tags['k'] = parameters.get('k')

    @requests(on='/slow')
    @dynamic_batching(preferred_batch_size=2, timeout=60_000)
    async def slow(self, docs: DocumentArray, parameters: dict, **kwargs: Any) -> None:
        if parameters.get('spool'):
            Path(parameters['spool'], 'called').touch()
        await asyncio.sleep(float(parameters.get('sleep', 0)))
        record(self.metas.name, docs)

    @requests(on='/all')
    @dynamic_batching(preferred_batch_size=4, timeout=60_000, flush_all=True)
    def everything(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @requests(on='/weighted')
    @dynamic_batching(preferred_batch_size=10, timeout=60_000, custom_metric=text_length, use_custom_metric=True)
    def weighted(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @requests(on='/spooled')
    @dynamic_batching(preferred_batch_size=1000, timeout=60_000, custom_metric=spooled_weight,
                      use_custom_metric=True)
    def spooled(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @requests(on='/wrong')
    @dynamic_batching(preferred_batch_size=2, timeout=60_000)
    def wrong(self, docs: DocumentArray, **kwargs: Any) -> DocumentArray:
        return DocumentArray(docs[:1])  # fewer documents than it was given

    @requests(on='/plain')
    def plain(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)


class Plain(Executor):
    """No batching in code: `uses_dynamic_batching` or an Executor YAML turns it on."""

    @requests
    def any_endpoint(self, docs: DocumentArray, **kwargs: Any) -> None:
        record(self.metas.name, docs)

    @requests(on='/stream')
    def stream(self, doc: Document, **kwargs: Any):
        yield doc
