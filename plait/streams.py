"""One stream engine for every "many requests, at most `prefetch` in flight" loop in plait:
the worker's and the gateway's `JinaRPC/Call`, the WebSocket gateway, and the gRPC, HTTP and
WebSocket clients all run their items through `bounded_map`.

It imports nothing of plait, so every layer can use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, Optional, TypeVar

T = TypeVar('T')
R = TypeVar('R')

_SOURCE = -1  # the index under which the source reports its end (or its error)


class ResponseOrder(Generic[R]):
    """Items numbered 0, 1, 2... handed out in that order when `in_order`, else as they come."""

    def __init__(self, in_order: bool):
        self._in_order = in_order
        self._held: dict[int, R] = {}
        self._next = 0

    def push(self, index: int, item: R) -> list[R]:
        """The items that can go out now that item `index` arrived."""
        if not self._in_order:
            return [item]
        self._held[index] = item
        ready = []
        while self._next in self._held:
            ready.append(self._held.pop(self._next))
            self._next += 1
        return ready

    def __len__(self) -> int:
        """How many items are held back waiting for an earlier one."""
        return len(self._held)


class Answers(Generic[R]):
    """Answers that come back on a stream of their own (a gRPC `Call`, a WebSocket), each
    matched by its key (the request_id) to the request awaiting it; an answer under a key
    nobody awaits goes to the oldest request still waiting. Used as `handle` of bounded_map:
    ``answer = answers.expect(key); send(request); return await answer``."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, asyncio.Future] = {}
        self._error: Optional[BaseException] = None

    def expect(self, key: Hashable) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self._error is not None:
            future.set_exception(self._error)
        else:
            self._waiting[key] = future
        return future

    def resolve(self, key: Hashable, answer: R) -> None:
        future = self._waiting.pop(key, None)
        if future is None and self._waiting:
            future = self._waiting.pop(next(iter(self._waiting)))
        if future is not None and not future.done():
            future.set_result(answer)

    def fail(self, error: BaseException) -> None:
        """End every wait, now and later, with `error` (the stream broke or ended)."""
        self._error = error
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)

    def __len__(self) -> int:
        return len(self._waiting)


class _Stop(BaseException):
    """Raised inside the stream's TaskGroup to leave it early: the group cancels its tasks. A
    BaseException, like GeneratorExit, so that no `except Exception` on the way swallows it."""


_END = object()


async def bounded_map(source: Iterable[T] | AsyncIterable[T], handle: Callable[[T], Awaitable[R]],
                      prefetch: Optional[int] = 0, in_order: bool = False) -> AsyncIterator[R]:
    """`handle(item)` for each item of `source`, concurrently, yielding the results.

    - **prefetch** bounds the items taken from `source` and not yet given to the consumer
      (being handled, held back for order, or finished): at most `prefetch` (0 or None =
      unbounded). A slot frees when the consumer asks for the next result, so a consumer that
      stops reading stops the source too (back-pressure) and nothing piles up in memory.
    - **in_order**: results come in the order of `source`; else as each finishes.
    - **errors**: an exception from `handle` is raised to the consumer in the result's place
      (in order, its turn; else when it happens); an exception from `source` is raised at once.
      Either way the items still running are cancelled first.
    - **the source ending** ends the stream once every item taken from it is delivered.
    - **the consumer leaving** (breaking out, an exception, or cancellation) cancels the
      items still running and stops reading `source`. Close the generator when you leave
      early, so this happens at once and not when it is garbage-collected:
      ``async with contextlib.aclosing(bounded_map(...)) as results: async for r in results``.

    Every task it starts lives in an `asyncio.TaskGroup` that the stream owns: none outlives it.
    """
    window = asyncio.Semaphore(prefetch) if prefetch and prefetch > 0 else None
    finished: asyncio.Queue[tuple[int, bool, Any]] = asyncio.Queue()
    order: Optional[ResponseOrder[tuple[bool, Any]]] = ResponseOrder(True) if in_order else None

    async def run(index: int, item: T) -> None:
        try:
            value = await handle(item)
        except Exception as e:  # noqa: BLE001  (handed to the consumer, never raised into the group)
            finished.put_nowait((index, False, e))
        except asyncio.CancelledError:  # by the stream as it ends, or by something inside handle
            finished.put_nowait((index, False, RuntimeError(f'handling item {index} was cancelled')))
            raise
        else:
            finished.put_nowait((index, True, value))

    async def feed(group: asyncio.TaskGroup) -> None:
        count = 0
        items = aiter(source) if isinstance(source, AsyncIterable) else None
        plain = iter(source) if items is None else None  # type: ignore[arg-type]
        try:
            while True:
                if window is not None:
                    await window.acquire()  # before reading: the source is not read ahead
                if plain is not None:
                    item = next(plain, _END)
                else:
                    try:
                        item = await anext(items)  # type: ignore[arg-type]
                    except StopAsyncIteration:
                        item = _END
                if item is _END:
                    break
                group.create_task(run(count, item))
                del item  # the task holds it as long as it needs it (it may be 50 MB)
                count += 1
        except Exception as e:  # noqa: BLE001  (handed to the consumer)
            finished.put_nowait((_SOURCE, False, e))
        else:
            finished.put_nowait((_SOURCE, True, count))
        finally:
            close = getattr(items, 'aclose', None)  # an async generator source is closed with the stream
            if close is not None:
                await close()

    error: Optional[BaseException] = None
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(feed(group))
            total: Optional[int] = None
            delivered = 0
            while total is None or delivered < total:
                index, succeeded, outcome = await finished.get()
                if index == _SOURCE:
                    if not succeeded:
                        error = outcome
                        raise _Stop
                    total = outcome
                    continue
                ready = order.push(index, (succeeded, outcome)) if order is not None else ((succeeded, outcome),)
                for ok, value in ready:
                    if not ok:
                        error = value
                        raise _Stop
                    delivered += 1
                    try:
                        yield value
                    except GeneratorExit:  # the consumer left: TaskGroup would wrap it in a group
                        raise _Stop from None
                    if window is not None:
                        window.release()
                    value = None  # delivered: not held while waiting for the next result
                ready = outcome = None
    except* _Stop:  # leaving early: the group has cancelled and awaited every task
        pass
    if error is not None:
        raise error
