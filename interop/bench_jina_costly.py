"""Section F's batched Executor for Jina 3.x (benchmarks/batching_bench.py): loaded by Jina's own
interpreter from the interop venv (`jina executor --py-modules`), never imported by plait. Same
cost and options as `benchmarks/bench_executors.CostlyBatched`."""

import time
from typing import Optional

from docarray import BaseDoc, DocList
from jina import Executor, dynamic_batching, requests


class BatchDoc(BaseDoc):
    text: Optional[str] = None
    tags: dict = {}


class JinaCostlyBatched(Executor):
    @requests
    @dynamic_batching(preferred_batch_size=32, timeout=10)
    def infer(self, docs: DocList[BatchDoc], **kwargs) -> DocList[BatchDoc]:
        time.sleep(0.020 + 0.0001 * len(docs))
        for doc in docs:
            doc.tags['batch'] = len(docs)
        return docs
