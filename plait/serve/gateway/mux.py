"""Many requests over one long-lived `JinaRPC/Call` stream to a replica, matched to their
responses by request_id. A message on an open stream costs about half of a unary call in
grpc.aio (no per-call setup), which is most of the gateway's per-hop overhead.

Failures look like unary ones: a broken stream fails every request waiting on it with
UNAVAILABLE (the caller retries on another replica), a timeout with DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

import grpc

from plait.errors import PlaitError
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.wire.constants import CALL_PATH



def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Busy(PlaitError):
    """This request_id is already waiting on the stream: send it another way."""


def _unbox(box: list[bytes]) -> bytes:
    """The payload in `box`, taken out: once gRPC has it, nothing of ours holds it."""
    return box.pop()


class MuxStream:
    """Requests go out through a queue, each in a one-item box that gRPC empties as it sends
    it, and responses are taken with `read()`: no iterator keeps the last message alive while
    it waits for the next one (after a 50 MB message, 50 MB held per replica and direction)."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel], metadata: tuple = ()):
        self._channel = channel
        self._metadata = metadata or None  # sent once, when the stream opens
        self._outgoing: Optional[asyncio.Queue] = None
        self._pending: dict[str, asyncio.Future] = {}
        self._reader: Optional[asyncio.Task] = None

    async def _requests(self, queue: asyncio.Queue):
        while (box := await queue.get()) is not None:
            yield box

    def _open(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        call = self._channel().stream_stream(CALL_PATH, request_serializer=_unbox)(self._requests(queue),
                                                                                 metadata=self._metadata)
        self._outgoing = queue
        self._reader = asyncio.ensure_future(self._read(call, queue))
        return queue

    def _deliver(self, body: bytes) -> None:
        response = RawDataRequest.FromString(body)
        future = self._pending.pop(response.header.request_id, None)
        if future is not None and not future.done():
            future.set_result(response)

    async def _read(self, call: grpc.aio.StreamStreamCall, queue: asyncio.Queue) -> None:
        error = rpc_error(grpc.StatusCode.UNAVAILABLE, 'the stream to the executor ended')
        try:
            while (body := await call.read()) is not grpc.aio.EOF:
                self._deliver(body)
                del body
        except grpc.aio.AioRpcError as e:
            error = rpc_error(e.code() if e.code() != grpc.StatusCode.CANCELLED else grpc.StatusCode.UNAVAILABLE,
                              e.details() or 'the stream to the executor broke')
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            if self._outgoing is queue:  # the next request opens a fresh stream
                self._outgoing = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def send(self, request_id: str, payload: bytes, timeout: Optional[float]) -> RawDataRequest:
        if not request_id or request_id in self._pending:
            raise Busy(request_id)
        queue = self._outgoing or self._open()
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        queue.put_nowait([payload])
        del payload
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, 'Deadline Exceeded') from None
        finally:
            if self._pending.get(request_id) is future:
                del self._pending[request_id]

    async def close(self) -> None:
        if self._outgoing is not None:
            self._outgoing.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()
