"""Streaming through a Flow: `stream_doc` on the gateway.

In a linear Flow (each deployment needs the one before it), the first deployment whose endpoint
is a generator is the stream's source. The deployments before it run once, on the request's
one document; the generator's replica is called with `stream_doc`; each document it yields
then passes every deployment after it, in order, and is answered as soon as it leaves the
last one. Deployments that do not serve the endpoint are skipped, as for `post`.

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

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Optional

import grpc

from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.config import DeploymentTarget
from plait.serve.gateway.connections import DeploymentConnections
from plait.serve.gateway.graph import RoutingFailure
from plait.serve.streaming import STREAM_PATH, SingleDocumentRequestProto, error_reply, reply_to
from plait.streams import bounded_map
from plait.wire.constants import WIRE_DEFAULT_ENDPOINT
from plait.wire.join import DataContentProto, doc_list_in
from plait.wire.messages import new_request_id

ERROR = 1  # StatusProto.ERROR
PIPELINE = 8  # yielded documents in flight through the deployments after the generator


class NotStreamable(Exception):
    """Why this Flow cannot stream this endpoint."""


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


def _as_request(single: SingleDocumentRequestProto) -> RawDataRequest:
    request = RawDataRequest()
    request.header.CopyFrom(single.header)
    request.parameters.CopyFrom(single.parameters)
    content = DataContentProto()
    content.docs.docs.add().CopyFrom(single.document)
    request.data = content.SerializeToString()
    return request


def _as_reply(of: SingleDocumentRequestProto, request: RawDataRequest) -> SingleDocumentRequestProto:
    """The answer message carrying the one document (or the error) of `request`."""
    reply = reply_to(of)
    if request.header.status.code == ERROR:
        reply.header.status.CopyFrom(request.header.status)
        return reply
    docs = doc_list_in(DataContentProto.FromString(request.data)).docs
    if len(docs) != 1:
        return error_reply(of, f'streaming expects one document from each deployment, got {len(docs)}')
    reply.document.CopyFrom(docs[0])
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
            reply = await self._through(before, single)
            if reply.header.status.code == ERROR:
                yield reply
                return
            single = SingleDocumentRequestProto()
            single.CopyFrom(self.request)
            single.document.CopyFrom(reply.document)
        produced = self._from_generator(source, single)
        if not after:
            async with contextlib.aclosing(produced) as items:
                async for item in items:
                    yield item
            return

        async def onwards(item: SingleDocumentRequestProto) -> SingleDocumentRequestProto:
            return item if item.header.status.code == ERROR else await self._through(after, item)

        async with contextlib.aclosing(bounded_map(produced, onwards, PIPELINE, in_order=True)) as items:
            async for item in items:
                yield item
                if item.header.status.code == ERROR:
                    return

    async def _through(self, targets: list[DeploymentTarget], item: SingleDocumentRequestProto) \
            -> SingleDocumentRequestProto:
        """`item`'s document through `targets`, as an answer message (an ERROR when one fails)."""
        try:
            return _as_reply(self.request, await self.graph.run_chain(targets, self.endpoint, _as_request(item)))
        except RoutingFailure as failure:
            return _as_reply(self.request, failure.response)

    async def _from_generator(self, target: DeploymentTarget, single: SingleDocumentRequestProto) \
            -> AsyncIterator[SingleDocumentRequestProto]:
        """The answers of the generator's replica: the first replica that answers (others are
        tried while none has), its messages as they come; a transport failure, an ERROR."""
        conn = self.graph.deployments[target.name]
        metadata = self.graph.endpoint_metadata(self.endpoint)
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
