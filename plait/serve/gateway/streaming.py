"""Streaming through a Flow: `stream_doc` on the gateway.

In a linear Flow (each deployment needs the one before it), the first deployment whose endpoint
is a generator is the stream's source. The deployments before it run once, on the request's
one document; the generator's replica is called with `stream_doc`; each document it yields
then passes every deployment after it, in order, and is answered as soon as it leaves the
last one. Deployments that do not serve the endpoint are skipped, as for `post`.

- The documents that arrive while earlier ones pass the deployments after the generator go on
  together in one request (never waiting for more), so those deployments are not one round trip
  per document behind a fast generator; each still reaches the caller as soon as it is done.
- Back-pressure: at most PIPELINE yielded documents are between the generator and the caller
  at a time; a slow caller slows the generator (nothing piles up in the gateway).
- The caller leaving closes the iterator: the call to the generator is cancelled, and so the
  generator itself.
- Errors end the stream with one message whose status is ERROR: a generator that raises (its
  executor's message passes through), a deployment after it that fails, the gateway's own
  (unreachable replica, nothing streams this endpoint).
- Where streaming is not defined it is refused with an ERROR message that says why: a Flow
  with `needs` joins (not a chain), a sharded generator deployment, or a second generator
  after the first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Optional

import grpc

from plait.errors import BadRequest
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.config import DeploymentTarget
from plait.serve.gateway.connections import DeploymentConnections
from plait.serve.gateway.graph import RoutingFailure, endpoint_metadata
from plait.serve.streaming import STREAM_PATH, SingleDocumentRequestProto, error_reply, reply_to
from plait.wire.constants import WIRE_DEFAULT_ENDPOINT
from plait.wire.join import DataContentProto, doc_list_in
from plait.wire.messages import StatusProto, new_request_id

ERROR = StatusProto.ERROR
PIPELINE = 8  # yielded documents waiting for, or on their way through, the deployments after the generator
_END = object()


class NotStreamable(BadRequest):
    """Why this Flow cannot stream this endpoint (answered as an ERROR message named BadRequest)."""


def _is_generator(conn: DeploymentConnections, endpoint: str) -> bool:
    schema = conn.schemas.get(endpoint)
    if schema is None and endpoint not in (conn.endpoints or ()):
        schema = conn.schemas.get(WIRE_DEFAULT_ENDPOINT)  # served by its default endpoint
    return bool(schema and schema.get('is_generator'))


def streams_endpoint(graph: Any, endpoint: str) -> Optional[bool]:
    """Whether some deployment serves `endpoint` (named as discovery names it) with a generator;
    None while some deployment's endpoints are not known yet."""
    if any(conn.endpoints is None for conn in graph.deployments.values()):
        return None
    return any(bool(conn.schemas.get(endpoint, {}).get('is_generator')) for conn in graph.deployments.values())


def _with_status(of: SingleDocumentRequestProto, failed: RawDataRequest) -> SingleDocumentRequestProto:
    reply = reply_to(of)
    reply.header.status.CopyFrom(failed.header.status)
    return reply


class FlowStream:
    """One `stream_doc` call through `graph` (plait.serve.gateway.graph.Graph)."""

    def __init__(self, graph: Any, request: SingleDocumentRequestProto, timeout: Optional[float]):
        self.graph = graph
        self.request = request
        self.timeout = timeout
        if not request.header.request_id:
            request.header.request_id = new_request_id()
        self.endpoint = request.header.exec_endpoint or '/'

    def _stages(self) -> tuple[list[DeploymentTarget], DeploymentTarget, list[DeploymentTarget]]:
        """(before, the generator, after) among the deployments serving the endpoint."""
        chain = self.graph.chain
        if chain is None:
            raise NotStreamable('streaming needs a Flow whose deployments form one chain; this Flow joins '
                                'branches with `needs`')
        serving = [t for t in chain if self.graph.deployments[t.name].serves(self.endpoint)]
        generators = [i for i, t in enumerate(serving) if _is_generator(self.graph.deployments[t.name], self.endpoint)]
        if not generators:
            raise NotStreamable(f'no executor of this Flow streams endpoint {self.endpoint!r} (none serves it '
                                'with a generator)')
        if len(generators) > 1:
            names = [serving[i].name for i in generators]
            raise NotStreamable(f'endpoint {self.endpoint!r} is a generator in more than one executor ({names}); '
                                'a stream has one source')
        at = generators[0]
        if len(self.graph.deployments[serving[at].name].shards) > 1:
            raise NotStreamable(f'executor {serving[at].name} streams {self.endpoint!r} but is sharded; a stream '
                                'comes from one replica')
        return serving[:at], serving[at], serving[at + 1:]

    async def replies(self) -> AsyncIterator[SingleDocumentRequestProto]:
        await self.graph.discover()
        try:
            before, source, after = self._stages()
        except NotStreamable as e:
            yield error_reply(self.request, str(e), name='BadRequest')
            return
        single = self.request
        if before:
            reply = (await self._through(before, [single]))[0]
            if reply.header.status.code == ERROR:
                yield reply
                return
            single = SingleDocumentRequestProto()
            single.CopyFrom(self.request)
            single.document.CopyFrom(reply.document)
        produced = self._from_generator(source, single)
        items = produced if not after else self._onwards(produced, after)
        async with contextlib.aclosing(items):
            async for item in items:
                yield item
                if item.header.status.code == ERROR:
                    return

    async def _onwards(self, produced: AsyncIterator[SingleDocumentRequestProto], after: list[DeploymentTarget]) \
            -> AsyncIterator[SingleDocumentRequestProto]:
        """The generator's documents through the deployments `after` it, in order. What has
        arrived while the previous documents were on their way goes on together, in one request
        (never waiting for more), so a generator faster than those deployments is not held to one
        round trip per document; at most PIPELINE wait meanwhile (the generator is held after)."""
        waiting: asyncio.Queue = asyncio.Queue(maxsize=PIPELINE)
        batches = 1 if any(self.graph.conditions.get(t.name) for t in after) else PIPELINE  # `when` may drop some

        async def read() -> None:
            try:
                async for item in produced:
                    await waiting.put(item)
            except Exception as e:  # noqa: BLE001  (handed to the consumer below)
                await waiting.put(e)
            await waiting.put(_END)

        reader = asyncio.ensure_future(read())
        try:
            ended = False
            while not ended:
                batch = [await waiting.get()]
                while len(batch) < batches and not waiting.empty():
                    batch.append(waiting.get_nowait())
                if batch[-1] is _END:
                    ended = True
                    batch.pop()
                failed = next((i for i, item in enumerate(batch) if isinstance(item, Exception)
                               or item.header.status.code == ERROR), None)
                ready = batch if failed is None else batch[:failed]
                for reply in await self._through(after, ready) if ready else []:
                    yield reply
                if failed is not None:
                    if isinstance(batch[failed], Exception):
                        raise batch[failed]
                    yield batch[failed]
                    return
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await produced.aclose()

    async def _through(self, targets: list[DeploymentTarget], items: list[SingleDocumentRequestProto]) \
            -> list[SingleDocumentRequestProto]:
        """The documents of `items` through `targets` in one request: an answer message each, or
        one ERROR message when a deployment fails."""
        request = RawDataRequest()
        request.header.CopyFrom(self.request.header)
        request.parameters.CopyFrom(self.request.parameters)
        content = DataContentProto()
        for item in items:
            content.docs.docs.add().CopyFrom(item.document)
        request.data = content.SerializeToString()
        try:
            response = await self.graph.run_chain(targets, self.endpoint, request)
        except RoutingFailure as failure:
            response = failure.response
        if response.header.status.code == ERROR:
            return [_with_status(self.request, response)]
        docs = doc_list_in(DataContentProto.FromString(response.data)).docs
        if len(docs) != len(items):
            return [error_reply(self.request, f'the executors after the generator returned {len(docs)} documents '
                                              f'for {len(items)}; in a stream each document stays one document')]
        replies = []
        for doc in docs:
            reply = reply_to(self.request)
            reply.document.CopyFrom(doc)
            replies.append(reply)
        return replies

    async def _from_generator(self, target: DeploymentTarget, single: SingleDocumentRequestProto) \
            -> AsyncIterator[SingleDocumentRequestProto]:
        """The answers of the generator's replica: the first replica that answers (others are
        tried while none has), its messages as they come; a transport failure, an ERROR."""
        conn = self.graph.deployments[target.name]
        metadata = endpoint_metadata(self.endpoint)
        payload = single.SerializeToString()
        last: Optional[grpc.aio.AioRpcError] = None
        for replica in conn.pick_any_shard().order():
            call = replica.channel.unary_stream(STREAM_PATH)(payload, timeout=self.timeout,
                                                             metadata=metadata + replica.credentials)
            started = False
            try:
                async for body in call:
                    started = True
                    yield SingleDocumentRequestProto.FromString(body)
                return
            except grpc.aio.AioRpcError as e:
                last = e
                if started or e.code() != grpc.StatusCode.UNAVAILABLE:
                    break
                replica.mark_down((e.details() or 'unavailable').split(';')[0])
            finally:
                call.cancel()
        assert last is not None
        yield error_reply(single, f'executor {target.name} failed the stream ({last.code().name}): '
                                  f'{last.details()}', name='InternalNetworkError')
