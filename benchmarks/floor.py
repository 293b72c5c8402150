"""The raw-grpcio floor every plait figure is set beside: a bare `grpc.aio` echo server in its
own process (bytes in, the same bytes out; the standard health service beside it), a bare
`grpc.aio` relay process that passes each call on to one or more echo servers in turn (the
floor of a gateway: two hops, or more for a chain), and bare `grpc.aio` clients. It imports
grpc only, never plait, so its start-up time and memory are what any gRPC service in Python
pays. Both servers answer the echo under plait's and Jina's unary data path too, so one
neutral client can call a floor, a plait gateway and a Jina gateway alike.

    python benchmarks/floor.py serve --port P                       # prints 'listening' once it accepts calls
    python benchmarks/floor.py relay --port P --upstream HOST:PORT  # ... --upstream HOST:PORT for a chain
    python benchmarks/floor.py probe --port P                       # one Health/Check in a fresh interpreter
    python benchmarks/floor.py http-relay --port P --upstream HOST:PORT  # HTTP in, the body relayed over gRPC

The HTTP relay is the floor of an HTTP gateway: uvicorn (httptools, uvloop) and a bare ASGI app
that passes each request body as it is to the echo servers over gRPC and answers with what comes
back; no framework, no JSON handling. On a WebSocket it does the same per binary message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Self

import grpc

SERVICE = 'floor.Echo'
UNARY = f'/{SERVICE}/echo'
STREAM = f'/{SERVICE}/echo_stream'
MANY = f'/{SERVICE}/many'  # server streaming: one request in, `count` copies out
HEALTH_CHECK = '/grpc.health.v1.Health/Check'
SINGLE_DATA = '/jina.JinaSingleDataRequestRPC/process_single_data'  # plait's and Jina's unary data call
LOCAL = '127.0.0.1'
# no message size limit (large-message figures), as plait's and Jina's own servers and channels
OPTIONS = [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)]


# -- the server (its own process) -------------------------------------------------------------
async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _echo_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _many(request: bytes, context: Any) -> AsyncIterator[bytes]:
    """Server streaming: the request's bytes back `count` times (call metadata, default 1,000)."""
    count = int(dict(context.invocation_metadata() or ()).get('count', '1000'))
    for _ in range(count):
        yield request


async def _exit_when_parent_dies(parent: int) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    os._exit(0)


def _relay(upstreams: list[str]) -> Any:
    """A unary handler passing the bytes to each upstream echo in turn, one channel each."""
    calls: list[Any] = []

    async def relay(request: bytes, context: Any) -> bytes:
        if not calls:  # channels are made inside the server's event loop
            calls.extend(grpc.aio.insecure_channel(u, options=OPTIONS).unary_unary(UNARY) for u in upstreams)
        for call in calls:
            request = await call(request)
        return request

    return relay


async def serve(port: int, upstreams: list[str] | None = None) -> None:
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server(options=OPTIONS)
    unary = grpc.unary_unary_rpc_method_handler(_relay(upstreams) if upstreams else _echo)
    handlers = {'echo': unary, 'echo_stream': grpc.stream_stream_rpc_method_handler(_echo_stream),
                'many': grpc.unary_stream_rpc_method_handler(_many)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    single_service, single_method = SINGLE_DATA[1:].split('/')
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(single_service, {single_method: unary}),))
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set('', health_pb2.HealthCheckResponse.SERVING)
    if not server.add_insecure_port(f'{LOCAL}:{port}'):
        raise SystemExit(f'floor: cannot listen on port {port}')
    await server.start()
    print('listening', flush=True)
    watch = asyncio.ensure_future(_exit_when_parent_dies(os.getppid()))
    try:
        await server.wait_for_termination()
    finally:
        watch.cancel()


def probe(port: int) -> int:
    """One Health/Check with the synchronous API, as a minimal probe process would do it."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f'{LOCAL}:{port}') as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


class FloorServer:
    """The floor server as a child process; `startup_s` is Popen to 'listening'. With
    `upstreams` it is a relay in front of those echo servers."""

    def __init__(self, port: int, upstreams: tuple[str, ...] = (), mode: str = ''):
        self.mode = mode or ('relay' if upstreams else 'serve')
        self.port = port
        self.address = f'{LOCAL}:{port}'
        self.upstreams = upstreams
        self.proc: subprocess.Popen | None = None
        self.startup_s = float('nan')

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> Self:
        from common import python_env

        start = time.perf_counter()
        command = [sys.executable, __file__, self.mode, '--port', str(self.port)]
        for upstream in self.upstreams:
            command += ['--upstream', upstream]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=python_env())
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()  # bounded: the child exits (EOF) if it cannot listen
            if not line.startswith(b'listening'):
                raise RuntimeError(f'floor server did not start (exit code {self.proc.wait(timeout=10)})')
            self.startup_s = time.perf_counter() - start
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from common import kill_process

        kill_process(self.proc)


# -- bare grpc.aio clients ---------------------------------------------------------------------
def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=OPTIONS)


async def latency(address: str, payload: bytes, count: int, warmup: int, path: str = UNARY) -> list[float]:
    """Seconds per sequential unary call of `path` with `payload` (bytes in, bytes out), after
    `warmup` calls; by default the floor's echo."""
    async with _channel(address) as channel:
        call = channel.unary_unary(path)
        for _ in range(warmup):
            await call(payload)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await call(payload)
            times.append(time.perf_counter() - start)
        return times


async def stream_latency(address: str, payload: bytes, count: int, warmup: int) -> list[float]:
    """Seconds per message sent and echoed back on one open bidirectional stream, one at a
    time (ping-pong): the per-message cost of a stream, against a unary call's per-call cost."""
    async with _channel(address) as channel:
        call = channel.stream_stream(STREAM)()
        for _ in range(warmup):
            await call.write(payload)
            await call.read()
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await call.write(payload)
            await call.read()
            times.append(time.perf_counter() - start)
        await call.done_writing()
        return times


async def throughput(address: str, payload: bytes, clients: int, seconds: float) -> float:
    """Requests/s of `clients` tasks, each with its own channel, each calling back to back."""
    channels = [_channel(address) for _ in range(clients)]
    try:
        calls = [c.unary_unary(UNARY) for c in channels]
        await asyncio.gather(*(call(payload) for call in calls))  # connected before timing
        deadline = time.perf_counter() + seconds
        counts = [0] * clients

        async def worker(i: int) -> None:
            while time.perf_counter() < deadline:
                await calls[i](payload)
                counts[i] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return sum(counts) / (time.perf_counter() - start)
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def stream(address: str, payloads: list[bytes]) -> float:
    """Seconds to echo all `payloads` over one bidirectional stream, all in flight at once
    (the shape of traffic the plait Client sends for many requests)."""
    async with _channel(address) as channel:
        await channel.unary_unary(UNARY)(payloads[0])  # connected before timing
        start = time.perf_counter()
        call = channel.stream_stream(STREAM)(iter(payloads))
        received = 0
        async for _ in call:
            received += 1
        assert received == len(payloads), (received, len(payloads))
        return time.perf_counter() - start


async def health_check(address: str, count: int, fresh_channel: bool, service: str = '',
                       timeout: float = 3.0) -> list[float]:
    """Seconds per raw Health/Check (True answers or errors alike), on one warm channel or a
    new channel per check."""
    from grpc_health.v1 import health_pb2

    request = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    times = []
    channel = None if fresh_channel else _channel(address)
    try:
        if channel is not None:
            await _quiet(channel.unary_unary(HEALTH_CHECK)(request, timeout=timeout))  # warm
        for _ in range(count):
            start = time.perf_counter()
            if fresh_channel:
                async with _channel(address) as one:
                    await _quiet(one.unary_unary(HEALTH_CHECK)(request, timeout=timeout))
            else:
                await _quiet(channel.unary_unary(HEALTH_CHECK)(request, timeout=timeout))
            times.append(time.perf_counter() - start)
    finally:
        if channel is not None:
            await channel.close()
    return times


async def health_status(address: str, service: str, timeout: float = 1.0) -> int | None:
    """The raw ServingStatus of `service`, or None when the call fails."""
    from grpc_health.v1 import health_pb2

    request = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    async with _channel(address) as channel:
        try:
            body = await channel.unary_unary(HEALTH_CHECK)(request, timeout=timeout)
        except grpc.aio.AioRpcError:
            return None
    return health_pb2.HealthCheckResponse.FromString(body).status


async def _quiet(call: Any) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as e:
        return e


def _http_relay_app(upstreams: list[str]) -> Any:
    relay = _relay(upstreams)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope['type'] == 'websocket':
            await _websocket_relay(relay, receive, send)
            return
        if scope['type'] != 'http':
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get('body', b''))
            more = message.get('more_body', False)
        body = await relay(b''.join(chunks), None)
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode())]})
        await send({'type': 'http.response.body', 'body': body})

    return app


async def _websocket_relay(relay: Any, receive: Any, send: Any) -> None:
    """Accept (subprotocol bytes), then answer each binary message with the relayed bytes."""
    await receive()  # websocket.connect
    await send({'type': 'websocket.accept', 'subprotocol': 'bytes'})
    while True:
        message = await receive()
        if message['type'] != 'websocket.receive':
            return
        await send({'type': 'websocket.send', 'bytes': await relay(message.get('bytes') or b'', None)})


def serve_http(port: int, upstreams: list[str]) -> None:
    import uvicorn

    print('listening', flush=True)  # uvicorn binds before it serves the first request
    uvicorn.run(_http_relay_app(upstreams), host=LOCAL, port=port, log_level='error', access_log=False,
                http='httptools', loop='uvloop' if _has_uvloop() else 'asyncio')


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('mode', choices=('serve', 'relay', 'probe', 'http-relay'))
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--upstream', action='append', default=[], help='relay: an echo server, in call order')
    args = parser.parse_args()
    if args.mode == 'probe':
        return probe(args.port)
    if args.mode in ('relay', 'http-relay') and not args.upstream:
        parser.error(f'{args.mode} needs at least one --upstream')
    if args.mode == 'http-relay':
        serve_http(args.port, args.upstream)
        return 0
    try:
        asyncio.run(serve(args.port, args.upstream if args.mode == 'relay' else None))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
