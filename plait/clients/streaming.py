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


def blocking(items: AsyncIterator[Any], loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """`items` (an async iterator living on `loop`, which runs in another thread) as a plain
    iterator: each item is fetched when asked for; leaving the loop early (break, an
    exception, the iterator collected) closes `items` on its loop, and so the call."""
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
