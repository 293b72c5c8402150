"""Streaming endpoints, executor side: `jina.JinaSingleDocumentRequestRPC/stream_doc` takes one
document and answers one message per document the generator method yields, as Jina does.

    @requests(on='/gen')
    async def gen(self, doc: Prompt, **kwargs) -> Token:   # or a plain `def` generator
        for word in doc.text.split():
            yield Token(text=word)

- Each yielded document goes out as soon as it is made; gRPC's flow control holds the
  generator while the caller is slow (it is not pulled ahead), so memory stays flat.
- A caller that leaves (cancels, disconnects, times out) closes the generator at once: its
  `finally` runs (for a sync generator, in the Executor's thread, once its current step ends).
- A generator that raises ends the stream with one last message whose status is ERROR, naming
  the executor and the exception; a document of another type than the method's declared output
  does too (Jina checks the same). A call to an endpoint that is no generator is answered with
  one ERROR message, as Jina answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor as ThreadPool
from typing import Any

from plait.logs import get_logger
from plait.proto import jina_data_pb2
from plait.serve.parameters import as_model, for_executor
from plait.wire.messages import error_status, struct_to_dict

SingleDocumentRequestProto = jina_data_pb2.SingleDocumentRequestProto
STREAM_SERVICE = 'jina.JinaSingleDocumentRequestRPC'
STREAM_PATH = f'/{STREAM_SERVICE}/stream_doc'
_END = object()


def reply_to(request: SingleDocumentRequestProto) -> SingleDocumentRequestProto:
    """An answer message of `request`'s stream: its request id and endpoint, nothing else yet."""
    reply = SingleDocumentRequestProto()
    reply.header.request_id = request.header.request_id
    if request.header.HasField('exec_endpoint'):
        reply.header.exec_endpoint = request.header.exec_endpoint
    return reply


def error_reply(request: SingleDocumentRequestProto, error: BaseException | str, executor: str = '',
                name: str | None = None) -> SingleDocumentRequestProto:
    reply = reply_to(request)
    reply.header.status.CopyFrom(error_status(error, name=name, executor=executor))
    return reply


async def _pulled(generator: Iterator[Any], pool: ThreadPool) -> AsyncIterator[Any]:
    """A sync generator's items, each step run in the Executor's thread pool (user code never
    blocks the event loop); closed in that thread too, after any step still running."""
    loop = asyncio.get_running_loop()
    step: asyncio.Future | None = None
    try:
        while True:
            step = loop.run_in_executor(pool, next, generator, _END)
            item = await asyncio.shield(step)
            step = None
            if item is _END:
                return
            yield item
    finally:
        if step is not None:  # left while a step ran: let it end before closing the generator
            await asyncio.gather(step, return_exceptions=True)
        await loop.run_in_executor(pool, generator.close)


async def stream_endpoint(runner: Any, key: str, request: SingleDocumentRequestProto) \
        -> AsyncIterator[SingleDocumentRequestProto]:
    """The answer messages of `request` to endpoint table key `key` of `runner`'s Executor
    (plait.serve.worker.ExecutorRunner)."""
    spec = runner.executor.endpoint_specs[key]
    endpoint = request.header.exec_endpoint or '/'
    if not spec.is_generator:
        yield error_reply(request, f'endpoint {endpoint!r} of executor {runner.name} does not stream '
                                   f'({type(runner.executor).__name__}.{spec.method_name} is not a generator): '
                                   'call it with post', runner.name, name='BadRequest')
        return
    output_type = spec.output_type.doc_type
    try:
        doc = spec.input_type.doc_type.from_protobuf(request.document)
        parameters = for_executor(struct_to_dict(request.parameters), runner.name)
        if spec.parameters_model is not None:
            parameters = as_model(spec.parameters_model, parameters, f'{runner.name} {key}')
        method = getattr(runner.executor, spec.method_name)
        made = method(**spec.call_kwargs(doc=doc, parameters=parameters, tracing_context=None))
        items = made if inspect.isasyncgen(made) else _pulled(made, runner.pool)
        async with contextlib.aclosing(items):
            async for item in items:
                if not isinstance(item, output_type):
                    raise TypeError(f'{type(runner.executor).__name__}.{spec.method_name} yielded '
                                    f'{type(item).__name__}; it declares {output_type.__name__}')
                reply = reply_to(request)
                reply.document.CopyFrom(item.to_protobuf())
                if runner.observer is not None:
                    runner.observer.stream_item(key)
                yield reply
    except Exception as ex:  # user code or a bad document: the stream ends with the error
        get_logger(runner.name).error('%s raised on %s while streaming: %r', runner.name, endpoint, ex)
        yield error_reply(request, ex, runner.name)
