"""`stream_doc`, the client half of streaming endpoints: one document in, the documents the
endpoint's generator yields out, each as soon as it arrives.

Every transport offers `stream_doc(request, timeout, extra)`: an async iterator of the answer
messages (SingleDocumentRequestProto) of one request, which ends the call when it is closed.
This module builds the request, turns each answer into a document (an ERROR answer into
plait.errors.ExecutorError) and lets the blocking Client iterate it from its own thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional

from plait.clients.base import error_from_status
from plait.proto import jina_common_pb2, jina_data_pb2
from plait.wire.messages import dict_to_struct, new_request_id

SingleDocumentRequestProto = jina_data_pb2.SingleDocumentRequestProto
ERROR = jina_common_pb2.StatusProto.ERROR


def stream_request(on: str, doc: Any, parameters: Optional[dict]) -> SingleDocumentRequestProto:
    from docarray import BaseDoc

    if not isinstance(doc, BaseDoc):
        raise TypeError(f'stream_doc: inputs= takes one document (a BaseDoc), got {type(doc).__name__}')
    request = SingleDocumentRequestProto()
    request.header.request_id = new_request_id()
    request.header.exec_endpoint = on
    if parameters:
        dict_to_struct(parameters, request.parameters)
    request.document.CopyFrom(doc.to_protobuf())
    return request


async def documents(replies: AsyncIterator[SingleDocumentRequestProto], return_type: Optional[type]) \
        -> AsyncIterator[Any]:
    """The document of each answer, as `return_type` (default plait.Document); raises the
    error of an ERROR answer. Closing this closes `replies` (and so the call)."""
    if return_type is None:
        from plait.documents import Document as return_type
    async with contextlib.aclosing(replies):
        async for reply in replies:
            if reply.header.status.code == ERROR:
                raise error_from_status(reply.header.status)
            yield return_type.from_protobuf(reply.document)


def stream_body(request: SingleDocumentRequestProto, envelope: bool = False) -> dict[str, Any]:
    """The JSON body of a stream over HTTP: the document itself, as Jina's client sends it (and
    Jina's gateway reads it), or with parameters (or `envelope`) `{"data": <document>,
    "parameters": {...}}`, which plait's gateway reads too."""
    from plait.wire.json_codec import doc_json, struct_json

    if not request.parameters.fields and not envelope:
        return doc_json(request.document)
    return {'data': doc_json(request.document), 'parameters': struct_json(request.parameters)}


async def replies_of_events(events: AsyncIterator[tuple[str, Any]], request: SingleDocumentRequestProto,
                            where: str) -> AsyncIterator[SingleDocumentRequestProto]:
    """Answer messages from the events of an HTTP or WebSocket stream: `update` (a document as
    JSON), `error` (a status as JSON) and `end`. A stream that stops before `end` is an error."""
    from plait.errors import InternalNetworkError
    from plait.wire.json_codec import json_doc_proto, status_from_json

    async for event, data in events:
        reply = SingleDocumentRequestProto()
        reply.header.request_id = request.header.request_id
        if event == 'update' and isinstance(data, dict):
            json_doc_proto(data, reply.document)
        elif event == 'error':
            reply.header.status.CopyFrom(status_from_json(data))
            reply.header.status.code = ERROR
        elif event == 'end':
            return
        else:
            continue  # comments, pings and events of later versions
        yield reply
        if event == 'error':
            return
    raise InternalNetworkError(f'{where} ended the stream before its end event', addresses=[where])


def deadline_of(timeout: Optional[float]) -> Optional[float]:
    """The loop time by which a stream with `timeout` seconds must be done (None: no bound)."""
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


async def until(deadline: Optional[float], items: AsyncIterator[Any], what: str) -> AsyncIterator[Any]:
    """`items`, every wait for the next one bounded by `deadline` (a loop time, None: none):
    RequestTimeout once it passes. The bound is taken per wait, never across a `yield`, so it
    holds whichever task drives the iteration (the blocking Client uses one per item)."""
    from plait.errors import RequestTimeout

    async with contextlib.aclosing(items):
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await anext(items)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise RequestTimeout(f'{what} did not finish streaming in time') from None
            yield item


def blocking(items: AsyncIterator[Any], loop: asyncio.AbstractEventLoop, owner: Any = None) -> Iterator[Any]:
    """`items` (an async iterator living on `loop`, which runs in another thread) as a plain
    iterator: each item is fetched when asked for; leaving the loop early (break, an
    exception, the iterator collected) closes `items` on its loop, and so the call. `owner`
    (the Client whose loop it is) is kept alive by this generator's frame while it iterates:
    `for d in Client(...).stream_doc(...)` holds no other reference to it."""
    finished = False
    try:
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(items.__anext__(), loop).result()
            except StopAsyncIteration:
                finished = True
                return
    finally:
        if not finished and not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(items.aclose(), loop).result(timeout=5)
