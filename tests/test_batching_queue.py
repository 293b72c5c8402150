"""The batch queue on its own, in one event loop (no processes): what waits for what."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plait import Document, DocumentArray
from plait.serve.batching import BatchConfig, BatchQueue, BatchStats


def _queue(config: BatchConfig, calls: list[list[str]], gate: asyncio.Event | None = None,
           stats: list[BatchStats] | None = None) -> BatchQueue:
    async def invoke(docs: DocumentArray) -> None:
        calls.append([d.text for d in docs])
        if gate is not None:
            await gate.wait()
        for doc in docs:
            doc.text = doc.text.upper()

    return BatchQueue('/e', config, invoke, DocumentArray, [stats.append] if stats is not None else [],
                      on_idle=lambda: None)


def _docs(*texts: str) -> DocumentArray:
    return DocumentArray([Document(text=t) for t in texts])


def test_while_the_method_is_busy_newcomers_fill_the_next_batch_up_to_its_size() -> None:
    async def scenario() -> tuple[list[list[str]], list[Any]]:
        calls: list[list[str]] = []
        gate = asyncio.Event()
        queue = _queue(BatchConfig(preferred_batch_size=2, timeout=0), calls, gate)
        first = [asyncio.ensure_future(queue.submit(_docs(t))) for t in ('a',)]
        await asyncio.sleep(0.01)  # timeout 0: 'a' is called alone, and blocks the method
        later = [asyncio.ensure_future(queue.submit(_docs(t))) for t in ('b', 'c', 'd')]
        await asyncio.sleep(0.01)  # all due, none called: the method is busy
        assert calls == [['a']]
        gate.set()
        results = await asyncio.wait_for(asyncio.gather(*first, *later), 10)
        return calls, [r.texts for r in results]

    calls, results = asyncio.run(scenario())
    assert calls == [['a'], ['b', 'c'], ['d']]
    assert results == [['A'], ['B'], ['C'], ['D']]


def test_a_custom_metric_that_raises_fails_only_its_own_caller() -> None:
    def metric(doc: Any) -> float:
        if doc.text == 'bad':
            raise KeyError('no weight for this one')
        return 1.0

    async def scenario() -> list[Any]:
        calls: list[list[str]] = []
        queue = _queue(BatchConfig(preferred_batch_size=2, timeout=60_000, custom_metric=metric), calls)
        return await asyncio.wait_for(asyncio.gather(
            queue.submit(_docs('x')), queue.submit(_docs('bad')), queue.submit(_docs('y')),
            return_exceptions=True), 10)

    ok_x, bad, ok_y = asyncio.run(scenario())
    assert isinstance(bad, KeyError)
    assert ok_x.texts == ['X'] and ok_y.texts == ['Y']


def test_stats_report_sizes_and_each_request_queueing_time_once() -> None:
    async def scenario() -> list[BatchStats]:
        stats: list[BatchStats] = []
        queue = _queue(BatchConfig(preferred_batch_size=3, timeout=60_000), [], stats=stats)
        await asyncio.wait_for(asyncio.gather(queue.submit(_docs('a', 'b')), queue.submit(_docs('c', 'd'))), 10)
        return stats

    stats = asyncio.run(scenario())
    assert [(s.docs, s.requests) for s in stats] == [(3, 2), (1, 1)]  # 4 docs in calls of 3
    assert len(stats[0].queued_seconds) == 2 and stats[1].queued_seconds == []
    assert all(q >= 0 for q in stats[0].queued_seconds)


@pytest.mark.parametrize('texts', [(), ('one',)])
def test_an_empty_request_is_answered_without_a_call(texts: tuple[str, ...]) -> None:
    async def scenario() -> tuple[list[list[str]], Any]:
        calls: list[list[str]] = []
        queue = _queue(BatchConfig(preferred_batch_size=1, timeout=60_000), calls)
        return calls, await asyncio.wait_for(queue.submit(_docs(*texts)), 10)

    calls, result = asyncio.run(scenario())
    assert calls == ([['one']] if texts else []) and len(result) == len(texts)


def test_which_endpoints_batch_and_how() -> None:
    from plait.executor import DEFAULT_ENDPOINT
    from plait.serve.batching import batching_table

    requests = {'/a': 'embed', '/b': 'embed', '/c': 'other', DEFAULT_ENDPOINT: 'fallback'}
    options = {'embed': {'preferred_batch_size': 8, 'timeout': 5},      # every endpoint of `embed`
               '/b': {'timeout': 7},                                     # over `embed`'s, option by option
               '/c': {'preferred_batch_size': 2, 'use_dynamic_batching': False},
               '/default': {'preferred_batch_size': 3},                  # the default endpoint's wire name
               '/served-by-default': {'flush_all': True}}
    table = batching_table(requests, options, 'x', lambda method: False)
    assert table == {'/a': BatchConfig(8, 5.0), '/b': BatchConfig(8, 7.0), DEFAULT_ENDPOINT: BatchConfig(3),
                     '/served-by-default': BatchConfig(flush_all=True)}
