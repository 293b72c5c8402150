"""The Executors the benchmarks serve. Defined in an importable module, so worker processes
import them by name (no cloudpickle); `foo` has no type hints, so the worker decodes the
request's documents into a DocumentArray and encodes them back: the full docarray path."""

from plait import Executor, requests


class NoOp(Executor):
    @requests
    def foo(self, docs, **kwargs):
        pass
