"""The gateway's gRPC face: `JinaRPC/Call` (prefetch-bounded, optionally in order),
`process_single_data`, endpoint discovery, dry_run, plus health with a live `readiness`
service. Requests are handled as bytes: documents pass through undecoded."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import grpc
from google.protobuf import empty_pb2

from plait.errors import PlaitError
from plait.proto import jina_common_pb2
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.outcome import GRPC_ABORT_STREAM, GRPC_ABORT_UNARY
from plait.serve.grpc_server import answer_stream, bytes_service
from plait.serve.memory import TRIMMER
from plait.wire.constants import IS_ERROR, PREFETCH, RESULTS_IN_ORDER


class _Abort(PlaitError):
    """Ends a Call stream with `code` (a request that cannot be served: see outcome.py)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class GrpcGateway:
    def __init__(self, core: GatewayCore, prefetch: int):
        self.core = core
        self.prefetch = prefetch

    async def process_single_data(self, body: bytes, context: Any) -> bytes:
        TRIMMER.after(len(body))
        try:
            return await self._process_single_data(body, context)
        finally:
            TRIMMER.after(len(body))  # counted from the answer: the request is gone by then

    async def _process_single_data(self, body: bytes, context: Any) -> bytes:
        outcome = await self.core.process_bytes(body, context)
        abort = GRPC_ABORT_UNARY.get(outcome.failure)
        if abort is not None:
            await context.abort(abort, outcome.description)
        if outcome.failure is not None:
            context.set_trailing_metadata(IS_ERROR)
        return outcome.response.SerializeToString()

    async def _route(self, body: bytes, carrier: Any = None) -> bytes:
        """One request of a Call stream: its answer, or _Abort to end the stream."""
        TRIMMER.after(len(body))
        try:
            outcome = await self.core.process_bytes(body, carrier)
        finally:
            TRIMMER.after(len(body))  # counted from the answer: the request is gone by then
        abort = GRPC_ABORT_STREAM.get(outcome.failure)
        if abort is not None:
            raise _Abort(abort, outcome.description)
        return outcome.response.SerializeToString()

    async def call(self, bodies: AsyncIterator[bytes], context: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        in_order = metadata.get(RESULTS_IN_ORDER) == 'true'
        prefetch = self.prefetch
        asked = metadata.get(PREFETCH, '')
        if asked.isdigit() and int(asked) > 0:
            prefetch = min(prefetch, int(asked)) if prefetch else int(asked)
        try:
            route = lambda body: self._route(body, metadata)  # noqa: E731  (the caller's trace context)
            await answer_stream(context, route, prefetch, in_order)
        except _Abort as e:  # malformed or refused input: end the stream with a clear status
            await context.abort(e.code, str(e))

    async def stream_doc(self, body: bytes, context: Any) -> AsyncIterator[bytes]:
        """A streaming endpoint through the Flow: one document in, each document out as it comes."""
        from google.protobuf.message import DecodeError

        from plait.serve.streaming import SingleDocumentRequestProto

        try:
            request = SingleDocumentRequestProto.FromString(body)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f'malformed SingleDocumentRequestProto: {e}')
        async with contextlib.aclosing(self.core.stream_doc(request, context.time_remaining())) as replies:
            async for reply in replies:
                yield reply.SerializeToString()

    async def endpoint_discovery(self, request: empty_pb2.Empty, context: Any) -> jina_common_pb2.EndpointsProto:
        await self.core.discover()
        proto = jina_common_pb2.EndpointsProto(endpoints=self.core.endpoints())
        proto.schemas.update(self.core.schemas())
        return proto

    async def dry_run(self, request: empty_pb2.Empty, context: Any) -> jina_common_pb2.StatusProto:
        return await self.core.dry_run()

    def services(self) -> list[tuple[Any, Any, str]]:
        """(add_fn, servicer, service name) for plait.serve.grpc_server.start_grpc_server."""
        from plait.proto import jina_common_pb2_grpc, jina_data_pb2  # noqa: F401  (reflection needs the descriptors)

        return [
            bytes_service('jina.JinaSingleDataRequestRPC', unary={'process_single_data': self.process_single_data}),
            bytes_service('jina.JinaRPC', streams={'Call': self.call}),
            bytes_service('jina.JinaSingleDocumentRequestRPC', unary_streams={'stream_doc': self.stream_doc}),
            (jina_common_pb2_grpc.add_JinaDiscoverEndpointsRPCServicer_to_server, self,
             'jina.JinaDiscoverEndpointsRPC'),
            (jina_common_pb2_grpc.add_JinaGatewayDryRunRPCServicer_to_server, self, 'jina.JinaGatewayDryRunRPC'),
        ]
