"""Dynamic batching: the documents of concurrent requests to one endpoint, with equal
parameters, merged into one call of the Executor method.

A batch is due once its documents reach `preferred_batch_size` (or, with `use_custom_metric`,
their summed `custom_metric(doc)`) or its oldest request has waited `timeout` ms, and is called
as soon as the method is free. It takes the oldest requests up to `preferred_batch_size` (all
of them with `flush_all`); a request larger than that is passed in calls of that size. Every
caller gets back exactly its own documents, in its order. A call that raises fails the
requests with documents in it; the next call and the next batch run normally.

Configured per method (`@dynamic_batching`) or per endpoint or method name
(`uses_dynamic_batching={'/foo': {...}}`, `dynamic_batching:` in an Executor YAML). The worker
imports this module only when some endpoint batches.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator, Optional

from plait.errors import BadConfig
from plait.wire.constants import DRY_RUN_ENDPOINT, WIRE_DEFAULT_ENDPOINT

DEFAULTS: dict[str, Any] = {'preferred_batch_size': 4, 'timeout': 10_000, 'flush_all': False,
                            'custom_metric': None, 'use_custom_metric': False, 'use_dynamic_batching': True}

logger = logging.getLogger('plait.batching')


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchConfig:
    """How one endpoint batches."""

    preferred_batch_size: int = 4
    timeout: float = 10_000                                # ms the oldest request may wait
    flush_all: bool = False                                # pass everything queued in one call
    custom_metric: Optional[Callable[[Any], float]] = None  # a document's weight, when used

    @classmethod
    def parse(cls, options: dict[str, Any], where: str) -> Optional['BatchConfig']:
        """The options of one endpoint, checked; None when `use_dynamic_batching` is False."""
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise BadConfig(f'{where}: unknown dynamic batching option(s) {sorted(unknown)}; '
                            f'expected {sorted(DEFAULTS)}')
        values = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None or k == 'custom_metric'}}
        for flag in ('flush_all', 'use_custom_metric', 'use_dynamic_batching'):
            if not isinstance(values[flag], bool):
                raise BadConfig(f'{where}: {flag} must be true or false, got {values[flag]!r}')
        if not values['use_dynamic_batching']:
            return None
        size, timeout = values['preferred_batch_size'], values['timeout']
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise BadConfig(f'{where}: preferred_batch_size must be an integer >= 1, got {size!r}')
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < math.inf:
            raise BadConfig(f'{where}: timeout must be a number of milliseconds >= 0, got {timeout!r}')
        metric = values['custom_metric']
        if values['use_custom_metric']:
            if not callable(metric):
                raise BadConfig(f'{where}: use_custom_metric needs custom_metric, a function of one '
                                f'document returning its weight (got {metric!r})')
        elif metric is not None and not callable(metric):
            raise BadConfig(f'{where}: custom_metric must be a function of one document, got {metric!r}')
        return cls(size, float(timeout), values['flush_all'], metric if values['use_custom_metric'] else None)


def merge_options(base: dict[str, Any], overrides: Optional[dict[str, Any]]) -> dict[str, Any]:
    """`overrides` (endpoint or method name -> options) over `base`, option by option."""
    merged: dict[str, Any] = {key: dict(options) if isinstance(options, dict) else options
                              for key, options in base.items()}
    for key, options in (overrides or {}).items():
        earlier = merged.get(key)
        if isinstance(options, dict) and isinstance(earlier, dict):
            merged[key] = {**earlier, **options}
        else:
            merged[key] = options
    return merged


def batching_table(requests: dict[str, str], options: dict[str, Any], owner: str,
                   is_generator: Callable[[str], bool]) -> dict[str, BatchConfig]:
    """endpoint -> BatchConfig for an Executor whose endpoint table is `requests` (endpoint ->
    method name). Keys of `options` are endpoints ('/foo') or method names; an endpoint's own
    options go over its method's. An unknown key is a BadConfig naming it."""
    from plait.executor import DEFAULT_ENDPOINT

    methods = set(requests.values())
    by_method: dict[str, Any] = {}
    by_endpoint: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str) or not key:
            raise BadConfig(f'{owner}: dynamic batching keys are endpoints or method names, got {key!r}')
        if not isinstance(value, dict):
            raise BadConfig(f'{owner}: dynamic batching of {key!r}: options must be a mapping, got {value!r}')
        if key.startswith('/') or key == DEFAULT_ENDPOINT:
            endpoint = DEFAULT_ENDPOINT if key == WIRE_DEFAULT_ENDPOINT and key not in requests else key
            if endpoint not in requests and DEFAULT_ENDPOINT not in requests:
                raise BadConfig(f'{owner}: dynamic batching for endpoint {key!r}, which it does not serve; '
                                f'it serves {sorted(requests)}')
            by_endpoint[endpoint] = value
        elif key in methods:
            by_method[key] = value
        else:
            raise BadConfig(f'{owner}: dynamic batching for {key!r}, which is neither an endpoint '
                            f"('/...') nor a @requests method; its methods are {sorted(methods)}")
    table: dict[str, BatchConfig] = {}
    for endpoint in set(requests) | set(by_endpoint):
        method = requests.get(endpoint, requests.get(DEFAULT_ENDPOINT, ''))
        if endpoint == DRY_RUN_ENDPOINT or (method not in by_method and endpoint not in by_endpoint):
            continue
        merged = {**by_method.get(method, {}), **by_endpoint.get(endpoint, {})}  # the endpoint's own win
        config = BatchConfig.parse(merged, f'{owner}: dynamic batching of {endpoint!r}')
        if config is None:
            continue
        if is_generator(method):
            raise BadConfig(f'{owner}: {method} streams documents (a generator); dynamic batching '
                            f'does not apply to it (endpoint {endpoint!r})')
        table[endpoint] = config
    return table


def check_executor_class(cls: type, requests: Optional[dict[str, str]],
                         overrides: Optional[dict[str, Any]], owner: str) -> None:
    """Raise BadConfig now, in the user's process, for batching options the Executor class
    `cls` (with `requests` rebinding its endpoints) cannot honour."""
    options = merge_options(getattr(cls, 'dynamic_batching', {}) or {}, overrides)
    if not options:
        return
    table = dict(cls.requests)
    table.update(requests or {})

    def is_generator(method: str) -> bool:
        fn = getattr(cls, method, None)
        return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)

    batching_table(table, options, owner, is_generator)


def batcher_for(executor: Any, owner: str, invoke: Callable[[str, Any, dict], Awaitable[Any]],
                concurrency: int = 1) -> Optional['Batcher']:
    """The Batcher of a built Executor (`invoke(table key, docs, parameters)` calls its
    method; `concurrency` calls of one queue at a time), or None when no endpoint batches.
    Bad options raise BadConfig."""
    specs = executor.endpoint_specs

    def is_generator(method: str) -> bool:
        return any(spec.is_generator for spec in specs.values() if spec.method_name == method)

    table = batching_table(executor.requests, executor.dynamic_batching, owner, is_generator)
    if not table:
        return None
    for endpoint, config in sorted(table.items()):
        logger.debug('%s batches %s: %s', owner, endpoint, config)
    return Batcher(table, invoke, lambda key: specs[key].input_type, concurrency)


# -- what a batch reports ---------------------------------------------------------------------
@dataclass
class BatchStats:
    """One call of a batched method: for logs and metrics."""

    endpoint: str
    docs: int                        # documents passed to the method in this call
    requests: int                    # requests they came from
    queued_seconds: list[float]      # per request: from arrival until its batch was flushed
    call_seconds: float              # the method call itself
    failed: bool = False


def log_batch(stats: BatchStats) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug('batch on %s: %d doc(s) from %d request(s), queued %.1f ms at most, called in %.1f ms%s',
                     stats.endpoint, stats.docs, stats.requests, 1000 * max(stats.queued_seconds, default=0),
                     1000 * stats.call_seconds, ' (raised)' if stats.failed else '')


# -- the queue ------------------------------------------------------------------------------
@dataclass(eq=False)
class _Waiting:
    """One caller's request in a queue."""

    docs: Any
    future: asyncio.Future
    arrived: float
    weights: Optional[list[float]]  # per document, with a custom metric; else 1 each
    weight: float
    parts: list[Any] = field(default_factory=list)
    done_docs: int = 0


Invoke = Callable[[Any], Awaitable[Any]]  # docs -> the method's result


class BatchQueue:
    """Requests to one endpoint with equal parameters, waiting to be called together.

    A batch is due once the waiting documents reach `preferred_batch_size` or the oldest has
    waited `timeout` ms; it is called as soon as the method is free (`concurrency` batches of
    this queue at a time). While the method is busy, newcomers still join the batch that is
    due, up to `preferred_batch_size`: a busy Executor gets fuller batches, not more of them."""

    def __init__(self, endpoint: str, config: BatchConfig, invoke: Invoke, doc_list_type: type,
                 observers: list[Callable[[BatchStats], None]], on_idle: Callable[[], None],
                 concurrency: int = 1):
        self.endpoint = endpoint
        self.config = config
        self._invoke = invoke
        self._doc_list_type = doc_list_type
        self._observers = observers
        self._on_idle = on_idle
        self._concurrency = concurrency
        self._waiting: list[_Waiting] = []
        self._weight = 0.0
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timed_out = False  # the oldest waiting request has waited `timeout`
        self._running: set[asyncio.Task] = set()
        self.flush_on_arrival = False  # draining: nothing waits for company any more

    async def submit(self, docs: Any) -> Any:
        """The method's result for `docs`, called in a batch with other callers' documents."""
        if len(docs) == 0:
            return docs  # nothing to call the method for: a batch answers document for document
        metric = self.config.custom_metric
        weights = None if metric is None else [float(metric(doc)) for doc in docs]  # raises here, not later
        waiting = _Waiting(docs, asyncio.get_running_loop().create_future(), time.monotonic(), weights,
                           float(len(docs)) if weights is None else sum(weights))
        self._waiting.append(waiting)
        self._weight += waiting.weight
        waiting.future.add_done_callback(lambda f: self._forget(waiting) if f.cancelled() else None)
        self._arm_timer()
        self._pump()
        return await waiting.future

    def _forget(self, waiting: _Waiting) -> None:
        """A caller gave up (cancelled, timed out) before its batch was called."""
        if waiting in self._waiting:
            oldest = waiting is self._waiting[0]
            self._waiting.remove(waiting)
            self._weight -= waiting.weight
            if oldest:  # the timeout now runs from the next oldest
                self._cancel_timer()
                self._arm_timer()
            self._idle_check()

    def _arm_timer(self) -> None:
        if self._timer is not None or self._timed_out or not self._waiting:
            return
        left = self.config.timeout / 1000 - (time.monotonic() - self._waiting[0].arrived)
        if left <= 0:
            self._timed_out = True
        else:
            self._timer = asyncio.get_running_loop().call_later(left, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        self._timed_out = True
        self._pump()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timed_out = False

    def _pump(self) -> None:
        """Start every batch that is due, as far as the method is free."""
        while self._waiting and len(self._running) < self._concurrency and (
                self._timed_out or self.flush_on_arrival or self._weight >= self.config.preferred_batch_size):
            batch = self._take()
            self._cancel_timer()
            self._arm_timer()  # for what is left, from its own oldest request
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _take(self) -> list[_Waiting]:
        """The requests of the next batch: the oldest ones, up to `preferred_batch_size` (the
        last may pass it; it is split into calls), or all with `flush_all`."""
        if self.config.flush_all:
            taken, self._waiting, self._weight = self._waiting, [], 0.0
            return taken
        weight, count = 0.0, 0
        while count < len(self._waiting) and weight < self.config.preferred_batch_size:
            weight += self._waiting[count].weight
            count += 1
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        self._weight = self._weight - weight if self._waiting else 0.0
        return taken

    def flush(self) -> None:
        """Shutting down: call everything queued as soon as the method is free."""
        self.flush_on_arrival = True
        self._pump()

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._pump()
        self._idle_check()

    def _idle_check(self) -> None:
        if not self._waiting and not self._running:
            self._on_idle()

    def _chunks(self, batch: list[_Waiting]) -> Iterator[list[tuple[_Waiting, int, int]]]:
        """The batch as calls: (caller, start, stop) slices of `preferred_batch_size` weight each."""
        if self.config.flush_all:
            yield [(w, 0, len(w.docs)) for w in batch]
            return
        limit = self.config.preferred_batch_size
        chunk: list[tuple[_Waiting, int, int]] = []
        weight = 0.0
        for w in batch:
            start = 0
            while start < len(w.docs):
                if w.weights is None:
                    stop = min(len(w.docs), start + int(limit - weight))
                    weight += stop - start
                else:
                    stop = start
                    while stop < len(w.docs) and weight < limit:
                        weight += w.weights[stop]
                        stop += 1
                chunk.append((w, start, stop))
                start = stop
                if weight >= limit:
                    yield chunk
                    chunk, weight = [], 0.0
        if chunk:
            yield chunk

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            await self._call_all(batch)
        except BaseException as ex:  # a bug here, or shutdown: no caller is left waiting
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(ex if isinstance(ex, Exception) else RuntimeError('shutting down'))
            if not isinstance(ex, Exception):
                raise

    async def _call_all(self, batch: list[_Waiting]) -> None:
        flushed = time.monotonic()
        queued = [flushed - w.arrived for w in batch]
        for chunk in self._chunks(batch):
            live = [(w, a, b) for w, a, b in chunk if not w.future.done()]  # not cancelled, not failed
            if not live:
                continue
            docs = self._doc_list_type([doc for w, a, b in live
                                        for doc in (w.docs if b - a == len(w.docs) else w.docs[a:b])])
            started = time.monotonic()
            try:
                result = await self._invoke(docs)
                out = _checked_result(result, docs)
            except Exception as ex:
                self._report(len(docs), live, queued, time.monotonic() - started, failed=True)
                queued = []  # each request's queueing time is reported once, with its first call
                for w, _, _ in live:
                    if not w.future.done():
                        w.future.set_exception(ex)
                continue
            self._report(len(docs), live, queued, time.monotonic() - started)
            queued = []
            offset = 0
            for w, a, b in live:
                w.parts.append(out[offset:offset + b - a])
                offset += b - a
                w.done_docs += b - a
                if w.done_docs == len(w.docs) and not w.future.done():
                    w.future.set_result(w.parts[0] if len(w.parts) == 1
                                        else type(w.parts[0])([d for part in w.parts for d in part]))

    def _report(self, docs: int, live: list[tuple[_Waiting, int, int]], queued: list[float],
                call_seconds: float, failed: bool = False) -> None:
        callers = {id(w) for w, _, _ in live}
        stats = BatchStats(self.endpoint, docs, len(callers), queued, call_seconds, failed)
        for observer in self._observers:
            try:
                observer(stats)
            except Exception:  # metrics must never fail a request
                logger.exception('a batch observer raised')


def _checked_result(result: Any, docs: Any) -> Any:
    """What a batched call returned: a DocList as long as its input, or None (changed in place)."""
    if result is None:
        return docs
    if not hasattr(result, 'to_protobuf') or isinstance(result, dict):
        raise TypeError(f'a method with dynamic batching must return a DocList of the same length as '
                        f'its input, or None; it returned {type(result).__name__}')
    if len(result) != len(docs):
        raise ValueError(f'a method with dynamic batching must return as many documents as it was given: '
                         f'{len(docs)} in, {len(result)} out')
    return result


# -- all queues of one Executor ---------------------------------------------------------------
class Batcher:
    """The batch queues of one Executor replica, made on first use per (endpoint, parameters)
    and dropped when empty."""

    def __init__(self, table: dict[str, BatchConfig], invoke: Callable[[str, Any, dict], Awaitable[Any]],
                 doc_list_type: Callable[[str], type], concurrency: int = 1):
        self.table = table
        self._concurrency = concurrency
        self._invoke = invoke
        self._doc_list_type = doc_list_type
        self._queues: dict[tuple[str, str], BatchQueue] = {}
        self.observers: list[Callable[[BatchStats], None]] = [log_batch]
        self._draining = False

    def queue_for(self, endpoint: str, key: str, parameters: dict[str, Any]) -> Optional[BatchQueue]:
        """The queue for a request to `endpoint` (served by table key `key`), or None when it
        does not batch."""
        batched = endpoint if endpoint in self.table else key
        config = self.table.get(batched)
        if config is None:
            return None
        queue_key = (batched, json.dumps(parameters, sort_keys=True))
        queue = self._queues.get(queue_key)
        if queue is None:
            queue = BatchQueue(batched, config, lambda docs: self._invoke(key, docs, parameters),
                               self._doc_list_type(key), self.observers, lambda: self._drop(queue_key, queue),
                               self._concurrency)
            queue.flush_on_arrival = self._draining
            self._queues[queue_key] = queue
        return queue

    def _drop(self, queue_key: tuple[str, str], queue: Optional[BatchQueue]) -> None:
        if self._queues.get(queue_key) is queue:
            del self._queues[queue_key]

    def drain(self) -> None:
        """Shutting down: call everything queued as soon as the method is free, and from now on
        whatever arrives."""
        self._draining = True
        for queue in list(self._queues.values()):
            queue.flush()
