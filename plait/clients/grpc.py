"""The gRPC transport: unary `process_single_data` for one request, the `JinaRPC/Call`
stream (bounded by prefetch) for many, `stream_doc` for streaming endpoints; health,
readiness and dry_run probes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, AsyncIterator, Iterable, Optional

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plait.clients.base import Requests
from plait.errors import BadRequest, InternalNetworkError, RequestTimeout, Unauthenticated
from plait.proto import jina_common_pb2, jina_common_pb2_grpc, jina_data_pb2, jina_data_pb2_grpc
from plait.streams import Answers, bounded_map
from plait.wire.channel import compression_of, grpc_options
from plait.wire.constants import PREFETCH, RESULTS_IN_ORDER, SINGLE_PATH

CALL_END_WAIT = 2.0  # seconds a server gets to end a stream once every answer is in


def translate_rpc_error(e: grpc.RpcError, where: str) -> Exception:
    code = e.code()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(where)
    if code == grpc.StatusCode.UNAVAILABLE:
        return InternalNetworkError(f'cannot reach {where}: {e.details()}', addresses=[where])
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RequestTimeout(f'{where} did not answer in time: {e.details()}')
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION):
        return BadRequest(f'{where} refused the request ({code.name}): {e.details()}')
    return InternalNetworkError(f'{where} failed the request ({code.name}): {e.details()}', addresses=[where])


class GrpcTransport:
    def __init__(self, host: str, port: int, tls: bool = False, compression: Optional[str] = None,
                 root_certificates: Optional[bytes] = None, token: Optional[str] = None):
        from plait.auth import credentials_metadata

        self.target = f'{host}:{port}'
        self._credentials = credentials_metadata(token)  # sent with every call
        self._metadata = self._credentials or None
        self.where = f'{"grpcs" if tls else "grpc"}://{self.target}'
        self._tls = tls
        self._root_certificates = root_certificates
        self._compression = compression_of(compression)
        self._channel: Optional[grpc.aio.Channel] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sync_channel: Optional[grpc.Channel] = None
        self._sync_call: Any = None
        self._sync_lock = threading.Lock()

    def _with(self, extra: tuple) -> Optional[tuple]:
        """The metadata of a data call: credentials, the caller's trace context and metadata."""
        return ((self._metadata or ()) + extra) or None

    def send_one_blocking(self, request: jina_data_pb2.DataRequestProto, timeout: Optional[float],
                          extra: tuple = ()) -> jina_data_pb2.DataRequestProto:
        """One unary call on a blocking channel (the fast path of the blocking Client)."""
        with self._sync_lock:
            if self._sync_channel is None:
                if self._tls:
                    creds = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
                    self._sync_channel = grpc.secure_channel(self.target, creds, options=grpc_options(),
                                                             compression=self._compression)
                else:
                    self._sync_channel = grpc.insecure_channel(self.target, options=grpc_options(),
                                                               compression=self._compression)
                self._sync_call = self._sync_channel.unary_unary(
                    SINGLE_PATH,
                    request_serializer=jina_data_pb2.DataRequestProto.SerializeToString,
                    response_deserializer=jina_data_pb2.DataRequestProto.FromString)
        try:
            return self._sync_call(request, timeout=timeout, metadata=self._with(extra))
        except grpc.RpcError as e:
            raise translate_rpc_error(e, self.where) from None

    def _ensure_channel(self) -> grpc.aio.Channel:
        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            if self._tls:
                creds = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
                self._channel = grpc.aio.secure_channel(self.target, creds, options=grpc_options(),
                                                        compression=self._compression)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options=grpc_options(),
                                                          compression=self._compression)
            self._loop = loop
        return self._channel

    async def close(self) -> None:
        if self._channel is not None and self._loop is asyncio.get_running_loop():
            await self._channel.close()
        self._channel = None
        self.close_blocking()

    def close_blocking(self) -> None:
        with self._sync_lock:
            if self._sync_channel is not None:
                self._sync_channel.close()
                self._sync_channel = None

    async def send(self, requests: Iterable[jina_data_pb2.DataRequestProto], prefetch: int,
                   timeout: Optional[float], results_in_order: bool,
                   extra: tuple = ()) -> AsyncIterator[jina_data_pb2.DataRequestProto]:
        """Answers to `requests` (taken lazily, at most `prefetch` unanswered); `extra` (key,
        value) pairs go with the call as metadata (trace context, the caller's metadata)."""
        channel = self._ensure_channel()
        requests = Requests(requests)
        if requests.single is not None:
            stub = jina_data_pb2_grpc.JinaSingleDataRequestRPCStub(channel)
            try:
                yield await stub.process_single_data(requests.single, timeout=timeout, metadata=self._with(extra))
            except grpc.aio.AioRpcError as e:
                raise translate_rpc_error(e, self.where) from None
            return
        # many: one JinaRPC/Call stream; each request awaits its answer by request_id
        outgoing: asyncio.Queue = asyncio.Queue()
        answers: Answers[jina_data_pb2.DataRequestProto] = Answers()

        async def stream() -> AsyncIterator[jina_data_pb2.DataRequestProto]:
            while (request := await outgoing.get()) is not None:  # None: the input has ended
                yield request

        metadata = ((RESULTS_IN_ORDER, 'true' if results_in_order else 'false'), (PREFETCH, str(prefetch or 0)),
                    *self._credentials, *extra)
        call = jina_data_pb2_grpc.JinaRPCStub(channel).Call(stream(), timeout=timeout, metadata=metadata)

        async def read() -> None:
            try:
                async for response in call:
                    answers.resolve(response.header.request_id, response)
                answers.fail(InternalNetworkError(f'{self.where} ended the stream before answering every '
                                                  f'request', addresses=[self.where]))
            except grpc.aio.AioRpcError as e:
                answers.fail(translate_rpc_error(e, self.where))

        async def one(request: jina_data_pb2.DataRequestProto) -> jina_data_pb2.DataRequestProto:
            answer = answers.expect(request.header.request_id)
            outgoing.put_nowait(request)
            return await answer

        reader = asyncio.ensure_future(read())
        done = False
        try:
            async with contextlib.aclosing(bounded_map(requests, one, prefetch, results_in_order)) as responses:
                async for response in responses:
                    yield response
            done = True
        finally:
            outgoing.put_nowait(None)  # the request stream ends (the server sees the input close)
            if done:  # every answer is in: the server ends the call; bounded, in case it does not
                await asyncio.wait({reader}, timeout=CALL_END_WAIT)
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def stream_doc(self, request: jina_data_pb2.SingleDocumentRequestProto, timeout: Optional[float],
                         extra: tuple = ()) -> AsyncIterator[jina_data_pb2.SingleDocumentRequestProto]:
        """The answers of one `stream_doc` call as they arrive; closing this ends the call."""
        stub = jina_data_pb2_grpc.JinaSingleDocumentRequestRPCStub(self._ensure_channel())
        call = stub.stream_doc(request, timeout=timeout, metadata=self._with(extra))
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as e:
            raise translate_rpc_error(e, self.where) from None
        finally:
            call.cancel()

    async def health(self, service: str, timeout: float) -> int:
        """The ServingStatus of `service`; raises AioRpcError (e.g. NOT_FOUND, UNAVAILABLE)."""
        stub = health_pb2_grpc.HealthStub(self._ensure_channel())
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return reply.status

    async def dry_run_status(self, timeout: float) -> jina_common_pb2.StatusProto:
        stub = jina_common_pb2_grpc.JinaGatewayDryRunRPCStub(self._ensure_channel())
        return await stub.dry_run(empty_pb2.Empty(), timeout=timeout, metadata=self._metadata)

    async def is_ready(self, kind: str, timeout: float) -> bool:
        """kind 'flow': readiness (dry_run on gateways without it); 'deployment': readiness,
        else plain health; 'executor'/'gateway': health of the server."""
        serving = health_pb2.HealthCheckResponse.SERVING
        try:
            if kind in ('flow', 'deployment'):
                try:
                    return await self.health('readiness', timeout) == serving
                except grpc.aio.AioRpcError as e:
                    if e.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED):
                        return False
                if kind == 'flow':
                    return (await self.dry_run_status(timeout)).code == jina_common_pb2.StatusProto.SUCCESS
            return await self.health('', timeout) == serving
        except (grpc.aio.AioRpcError, asyncio.TimeoutError, OSError):
            return False

    async def dry_run(self, timeout: float) -> bool:
        try:
            return (await self.dry_run_status(timeout)).code == jina_common_pb2.StatusProto.SUCCESS
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # a bare executor: its health says it
                return await self.is_ready('executor', timeout)
            return False
        except (asyncio.TimeoutError, OSError):
            return False

    async def status_info(self, timeout: float) -> dict[str, dict[str, str]]:
        stub = jina_common_pb2_grpc.JinaInfoRPCStub(self._ensure_channel())
        try:
            info: Any = await stub._status(empty_pb2.Empty(), timeout=timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise translate_rpc_error(e, self.where) from None
        return {'jina': dict(info.jina), 'envs': dict(info.envs)}
