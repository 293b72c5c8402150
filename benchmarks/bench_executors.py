"""The Executors the benchmarks serve. Defined in an importable module, so worker processes
import them by name (no cloudpickle); `foo` has no type hints, so the worker decodes the
request's documents into a DocumentArray and encodes them back: the full docarray path."""

import time

from docarray.documents import TextDoc

from plait import Executor, dynamic_batching, requests


class NoOp(Executor):
    @requests
    def foo(self, docs, **kwargs):
        pass


class Tokens(Executor):
    """A streaming endpoint: `n` small documents (parameters; default 1,000), as fast as it can."""

    @requests(on='/gen')
    async def gen(self, doc: TextDoc, parameters: dict, **kwargs) -> TextDoc:
        for i in range(int(parameters.get('n', 1000))):
            yield TextDoc(text=f'token {i}')


class Same(Executor):
    """A stage before or after the generator: one document in, the same out."""

    @requests
    def same(self, doc: TextDoc, **kwargs) -> TextDoc:
        return doc


CALL_SECONDS = 0.020      # the fixed cost of one call (a model on a GPU, say)
DOC_SECONDS = 0.0001      # plus this per document
PREFERRED_BATCH_SIZE = 32


def costly_call(docs) -> None:
    """What a call costs: 20 ms + 0.1 ms per document; tags each document with the call's size."""
    time.sleep(CALL_SECONDS + DOC_SECONDS * len(docs))
    for doc in docs:
        doc.tags['batch'] = len(docs)


class Costly(Executor):
    @requests
    def infer(self, docs, **kwargs):
        costly_call(docs)


class CostlyBatched(Executor):
    @requests
    @dynamic_batching(preferred_batch_size=PREFERRED_BATCH_SIZE, timeout=10)
    def infer(self, docs, **kwargs):
        costly_call(docs)
