"""Building a plait gRPC server: the servicers a process offers plus, always, the standard
health service, server reflection and `jina.JinaInfoRPC/_status`."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, Sequence

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from plait.errors import RuntimeFailedToStart
from plait.proto import jina_common_pb2, jina_common_pb2_grpc
from plait.serve.info import status_info
from plait.streams import bounded_map
from plait.wire.channel import server_options

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class InfoServicer(jina_common_pb2_grpc.JinaInfoRPCServicer):
    async def _status(self, request: empty_pb2.Empty, context: Any) -> jina_common_pb2.JinaInfoProto:
        info = status_info()
        return jina_common_pb2.JinaInfoProto(jina=info['jina'], envs=info['envs'])


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise RuntimeFailedToStart(f'cannot read TLS {what} {path!r}: {e.strerror}') from None


def bytes_service(service: str, unary: Optional[dict[str, Any]] = None, streams: Optional[dict[str, Any]] = None,
                  unary_streams: Optional[dict[str, Any]] = None) \
        -> tuple[Callable[[Any, grpc.aio.Server], None], Any, str]:
    """A service whose handlers take and return raw bytes (they parse themselves, so bad
    input gets INVALID_ARGUMENT and undecoded payloads can pass through): `unary` methods,
    stream-stream `streams`, and `unary_streams` (one message in, an async generator out)."""
    handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in (unary or {}).items()}
    handlers.update({name: grpc.stream_stream_rpc_method_handler(fn) for name, fn in (streams or {}).items()})
    handlers.update({name: grpc.unary_stream_rpc_method_handler(fn) for name, fn in (unary_streams or {}).items()})
    generic = grpc.method_handlers_generic_handler(service, handlers)
    return (lambda _, server: server.add_generic_rpc_handlers((generic,))), None, service


async def _messages(context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """The request messages of a streaming call, read one by one with `context.read()`."""
    while True:
        body = await context.read()
        if body is grpc.aio.EOF:
            return
        yield body
        del body  # not held while waiting for the next message (it may be 50 MB)


async def answer_stream(context: grpc.aio.ServicerContext, handle: Callable[[bytes], Awaitable[bytes]],
                        prefetch: Optional[int] = 0, in_order: bool = False) -> None:
    """Answer a stream-stream call (bytes in, bytes out): `handle` each request concurrently
    through plait.streams.bounded_map and write each answer. Messages are read and written
    with the context's read()/write(), not with iterators, which hold the last message alive
    until the next one comes."""
    async with contextlib.aclosing(bounded_map(_messages(context), handle, prefetch, in_order)) as answers:
        async for answer in answers:
            await context.write(answer)
            del answer


async def start_grpc_server(
    host: str,
    port: int,
    services: Iterable[tuple[Callable[[Any, grpc.aio.Server], None], Any, str]],
    ssl_certfile: Optional[str] = None,
    ssl_keyfile: Optional[str] = None,
    interceptors: Sequence[Any] = (),
) -> tuple[grpc.aio.Server, HealthServicer]:
    """Start a server on host:port serving `services` ((add_fn, servicer, full service name))
    plus health (overall status NOT_SERVING until the caller says otherwise), reflection and
    _status; `interceptors` (token checks) see every call. Raises RuntimeFailedToStart with a
    clear message when the port is taken."""
    server = grpc.aio.server(options=server_options(), interceptors=list(interceptors) or None)
    health = HealthServicer()
    names = [health_pb2.DESCRIPTOR.services_by_name['Health'].full_name,
             reflection.SERVICE_NAME, 'jina.JinaInfoRPC']
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    jina_common_pb2_grpc.add_JinaInfoRPCServicer_to_server(InfoServicer(), server)
    for add_fn, servicer, name in services:
        add_fn(servicer, server)
        names.append(name)
    reflection.enable_server_reflection(names, server)
    address = f'{host}:{port}'
    try:
        if ssl_certfile or ssl_keyfile:
            if not (ssl_certfile and ssl_keyfile):
                raise RuntimeFailedToStart('TLS needs both ssl_certfile and ssl_keyfile')
            creds = grpc.ssl_server_credentials([(_read(ssl_keyfile, 'key file'),
                                                  _read(ssl_certfile, 'certificate file'))])
            bound = server.add_secure_port(address, creds)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as e:
        raise RuntimeFailedToStart(f'cannot listen on {address}: port {port} is already in use '
                                   f'or the address is not available ({e})') from None
    if not bound:
        raise RuntimeFailedToStart(f'cannot listen on {address}: port {port} is already in use')
    await health.set('', NOT_SERVING)
    await server.start()
    return server, health


async def set_serving(health: HealthServicer, names: Iterable[str], serving: bool) -> None:
    status = SERVING if serving else NOT_SERVING
    for name in ['', *names]:
        await health.set(name, status)
