"""J. The stream engine (`plait.streams.bounded_map`) in memory: what one item costs going
through it, beside the hand-written loop it replaced (one task per item and a result queue,
no bound, no order, no cancellation), both driven in the same process and repetition."""

from __future__ import annotations

import asyncio
import time

from common import Settings, guarded, section_main
from results import Section

ITEMS = 20_000


async def _handle(item: int) -> int:
    await asyncio.sleep(0)  # one suspension, as a handler that awaits something would
    return item


async def _hand_written(items: int) -> float:
    """The old loops' shape: a task per item, results through a queue, the consumer counting."""
    results: asyncio.Queue = asyncio.Queue()

    async def one(item: int) -> None:
        results.put_nowait(await _handle(item))

    start = time.perf_counter()
    for item in range(items):
        asyncio.ensure_future(one(item))
    for _ in range(items):
        await results.get()
    return time.perf_counter() - start


async def _bounded(items: int, prefetch: int, in_order: bool) -> float:
    from plait.streams import bounded_map

    start = time.perf_counter()
    count = 0
    async for _ in bounded_map(range(items), _handle, prefetch, in_order):
        count += 1
    assert count == items
    return time.perf_counter() - start


def new_section() -> Section:
    return Section('streams', 'J. The stream engine (bounded_map)', notes=[
        (f'{ITEMS:,} items whose handler awaits once, in one event loop, no I/O: the cost of the engine '
         'itself per item. Floor: the hand-written shape the six loops had (a task per item and a '
         'result queue, with no bound, order or cancellation), in the same repetition.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    items = ITEMS // 10 if settings.quick else ITEMS
    cases = [('as they come, no bound (the worker\'s Call)', 0, False),
             ('as they come, prefetch 1000 (the gateway\'s Call, default)', 1000, False),
             ('in order, prefetch 100 (the clients)', 100, True)]

    def run() -> None:
        for _ in range(settings.reps):
            floor = asyncio.run(_hand_written(items)) / items * 1e6
            for name, prefetch, in_order in cases:
                row = section.row(f'per item, {name}', 'us')
                row.floor.append(floor)
                row.plait.append(asyncio.run(_bounded(items, prefetch, in_order)) / items * 1e6)

    guarded(section, 'stream engine figures', run)


if __name__ == '__main__':
    section_main(new_section, measure)
