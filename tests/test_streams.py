"""bounded_map, in memory: ordering, the prefetch bound, errors, the source ending, and
cancellation when the consumer leaves. Every wait is bounded by `asyncio.timeout`."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from plait.streams import ResponseOrder, bounded_map

BOUND = 5.0  # seconds any one test may take before it is a hang


def run(coro):
    async def bounded():
        async with asyncio.timeout(BOUND):
            return await coro
    return asyncio.run(bounded())


class Gates:
    """Handler whose item i finishes only when gate i opens; records what is running."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.running: set[int] = set()
        self.peak = 0
        self.started: list[int] = []
        self.cancelled: list[int] = []

    def gate(self, i: int) -> asyncio.Event:
        return self.gates.setdefault(i, asyncio.Event())

    async def handle(self, i: int) -> int:
        self.running.add(i)
        self.started.append(i)
        self.peak = max(self.peak, len(self.running))
        try:
            await self.gate(i).wait()
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        finally:
            self.running.discard(i)
        return i * 10

    async def until(self, predicate) -> None:
        while not predicate():
            await asyncio.sleep(0)


def test_in_order_delivers_in_source_order_even_when_items_finish_backwards():
    async def main():
        g = Gates()
        got = []

        async def consume():
            async for value in bounded_map(range(4), g.handle, prefetch=0, in_order=True):
                got.append(value)

        consumer = asyncio.create_task(consume())
        await g.until(lambda: len(g.started) == 4)
        for i in (3, 2, 1):
            g.gate(i).set()
        await g.until(lambda: not g.running - {0})
        assert got == []          # 1..3 are done but held back behind 0
        g.gate(0).set()
        await consumer
        assert got == [0, 10, 20, 30]
    run(main())


def test_as_they_come_delivers_in_completion_order():
    async def main():
        g = Gates()
        got = []

        async def consume():
            async for value in bounded_map(range(3), g.handle, in_order=False):
                got.append(value)

        consumer = asyncio.create_task(consume())
        await g.until(lambda: len(g.started) == 3)
        for count, i in enumerate((2, 0, 1), 1):
            g.gate(i).set()
            await g.until(lambda n=count: len(got) == n)
        await consumer
        assert got == [20, 0, 10]
    run(main())


@pytest.mark.parametrize('in_order', [True, False])
def test_prefetch_bounds_items_taken_and_not_yet_delivered(in_order):
    async def main():
        g = Gates()
        for i in range(10):
            g.gate(i).set()
        taken = []

        def source():
            for i in range(10):
                taken.append(i)
                yield i

        delivered = 0
        async for _ in bounded_map(source(), g.handle, prefetch=3, in_order=in_order):
            # the consumer holds a result: at most prefetch taken and not yet handed out
            assert len(taken) - delivered <= 3
            delivered += 1
            await asyncio.sleep(0)  # give the feeder every chance to run ahead
        assert delivered == 10 and g.peak <= 3
    run(main())


def test_a_consumer_that_stops_reading_stops_the_source():
    async def main():
        g = Gates()
        for i in range(100):
            g.gate(i).set()
        taken = []

        def source():
            for i in range(100):
                taken.append(i)
                yield i

        async with contextlib.aclosing(bounded_map(source(), g.handle, prefetch=2)) as results:
            first = await anext(results)
            for _ in range(50):
                await asyncio.sleep(0)
            assert first == 0 and len(taken) <= 3   # back-pressure: nothing piles up
    run(main())


def test_an_exception_in_one_item_reaches_the_consumer_in_its_turn_and_cancels_the_rest():
    async def main():
        g = Gates()

        async def handle(i: int) -> int:
            if i == 1:
                raise ValueError('item 1 is bad')
            return await g.handle(i)

        got = []

        async def consume():
            async for value in bounded_map(range(4), handle, in_order=True):
                got.append(value)

        consumer = asyncio.create_task(consume())
        await g.until(lambda: {0, 2, 3} <= set(g.started))
        g.gate(0).set()
        with pytest.raises(ValueError, match='item 1 is bad'):
            await consumer
        assert got == [0] and sorted(g.cancelled) == [2, 3] and not g.running
    run(main())


def test_an_exception_in_the_source_is_raised_and_running_items_cancelled():
    async def main():
        g = Gates()

        async def source():
            yield 0
            yield 1
            await asyncio.sleep(0)
            raise ConnectionError('the peer went away')

        with pytest.raises(ConnectionError, match='went away'):
            async for _ in bounded_map(source(), g.handle):
                pass
        assert sorted(g.cancelled) == [0, 1] and not g.running
    run(main())


def test_the_source_ending_early_ends_the_stream_after_what_was_taken():
    async def main():
        async def handle(i: int) -> int:
            await asyncio.sleep(0)
            return i

        assert [v async for v in bounded_map([], handle)] == []
        assert [v async for v in bounded_map(iter([7]), handle, prefetch=5, in_order=True)] == [7]

        async def three():
            for i in range(3):
                yield i

        assert sorted([v async for v in bounded_map(three(), handle, prefetch=1)]) == [0, 1, 2]
    run(main())


def test_the_consumer_leaving_cancels_every_running_item_and_the_source():
    async def main():
        g = Gates()
        g.gate(0).set()
        closed = asyncio.Event()

        async def endless():
            try:
                i = 0
                while True:
                    yield i
                    i += 1
            finally:
                closed.set()

        async with contextlib.aclosing(bounded_map(endless(), g.handle, prefetch=4)) as results:
            assert await anext(results) == 0
            await g.until(lambda: len(g.running) == 3)  # 0 is with the consumer: 4 taken in all
        # leaving the block closed the stream: nothing runs, the source was closed
        assert not g.running and sorted(g.cancelled) == [1, 2, 3] and closed.is_set()
    run(main())


def test_cancelling_the_consumer_cancels_the_items():
    async def main():
        g = Gates()

        async def consume():
            async with contextlib.aclosing(bounded_map(range(3), g.handle)) as results:
                async for _ in results:
                    pass

        consumer = asyncio.create_task(consume())
        await g.until(lambda: len(g.running) == 3)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert sorted(g.cancelled) == [0, 1, 2] and not g.running
    run(main())


def test_response_order_holds_until_the_gap_fills():
    order = ResponseOrder(in_order=True)
    assert order.push(1, 'b') == [] and len(order) == 1
    assert order.push(0, 'a') == ['a', 'b'] and len(order) == 0
    assert ResponseOrder(in_order=False).push(5, 'x') == ['x']


def test_answers_match_by_key_fall_back_to_the_oldest_and_fail_every_wait():
    from plait.streams import Answers

    async def main():
        answers: Answers[str] = Answers()
        a, b, c = answers.expect('a'), answers.expect('b'), answers.expect('c')
        answers.resolve('b', 'B')
        answers.resolve('zzz', 'to the oldest')   # an unknown key: the oldest still waiting
        assert await b == 'B' and await a == 'to the oldest' and len(answers) == 1
        answers.fail(ConnectionError('stream ended'))
        with pytest.raises(ConnectionError):
            await c
        with pytest.raises(ConnectionError):   # a request after the failure does not wait forever
            await answers.expect('d')
    run(main())
