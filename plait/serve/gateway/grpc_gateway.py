"""The gateway's gRPC face: `JinaRPC/Call` (prefetch-bounded, optionally in order),
`process_single_data`, endpoint discovery, dry_run, plus health with a live `readiness`
service. Requests are handled as bytes: documents pass through undecoded."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError

from plait.errors import PlaitError
from plait.proto import jina_common_pb2
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.graph import RoutingFailure
from plait.serve.grpc_server import bytes_service
from plait.streams import bounded_map
from plait.wire.constants import IS_ERROR, PREFETCH, RESULTS_IN_ORDER

# an executor refused the request itself (malformed documents, too large): a gRPC status for
# the caller, not an error response that would carry the offending bytes back
_REFUSED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


class _Refused(PlaitError):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _parse(body: bytes) -> RawDataRequest:
    try:
        return RawDataRequest.FromString(body)
    except DecodeError as e:
        raise ValueError(f'malformed DataRequestProto: {e}') from None


class GrpcGateway:
    def __init__(self, core: GatewayCore, prefetch: int):
        self.core = core
        self.prefetch = prefetch

    async def _route(self, body: bytes, carrier: Any = None) -> bytes:
        """The serialized response, errors reported in its header; _Refused for bad input."""
        try:
            return (await self.core.process(_parse(body), carrier)).SerializeToString()
        except ValueError as e:  # malformed bytes, bad target_executor regex
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
        except RoutingFailure as failure:
            if failure.code in _REFUSED:
                raise _Refused(failure.code, failure.response.header.status.description) from None
            return failure.response.SerializeToString()

    async def process_single_data(self, body: bytes, context: Any) -> bytes:
        try:
            response = await self.core.process(_parse(body), context)
        except ValueError as e:  # malformed bytes, bad target_executor regex
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except RoutingFailure as failure:
            # no executor serves the endpoint, or one refused the request itself
            if failure.code == grpc.StatusCode.NOT_FOUND or failure.code in _REFUSED:
                await context.abort(failure.code, failure.response.header.status.description)
            context.set_trailing_metadata(IS_ERROR)
            return failure.response.SerializeToString()
        if response.header.status.code == jina_common_pb2.StatusProto.ERROR:
            context.set_trailing_metadata(IS_ERROR)
        return response.SerializeToString()

    async def call(self, bodies: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        metadata = dict(context.invocation_metadata() or ())
        in_order = metadata.get(RESULTS_IN_ORDER) == 'true'
        prefetch = self.prefetch
        asked = metadata.get(PREFETCH, '')
        if asked.isdigit() and int(asked) > 0:
            prefetch = min(prefetch, int(asked)) if prefetch else int(asked)
        try:
            route = lambda body: self._route(body, metadata)  # noqa: E731  (the caller's trace context)
            async with contextlib.aclosing(bounded_map(bodies, route, prefetch, in_order)) as replies:
                async for reply in replies:
                    yield reply
        except _Refused as e:  # malformed input: end the stream with a clear status
            await context.abort(e.code, str(e))

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
            (jina_common_pb2_grpc.add_JinaDiscoverEndpointsRPCServicer_to_server, self,
             'jina.JinaDiscoverEndpointsRPC'),
            (jina_common_pb2_grpc.add_JinaGatewayDryRunRPCServicer_to_server, self, 'jina.JinaGatewayDryRunRPC'),
        ]
