"""M. Streaming endpoints: a generator yielding 1,000 small documents, read with the plait
AsyncClient's `stream_doc` over gRPC, Server-Sent Events and WebSocket, from a Deployment and
through a 3-stage Flow (pre -> gen -> post), beside a raw grpcio server-streaming floor (a bare
grpc.aio server answering one request with 1,000 messages of the same size, read by a bare
grpc.aio client) measured in the same repetitions."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from typing import Any

import floor
from common import Settings, guarded, section_main
from results import Section, Target

ITEMS = 1000
PROTOCOLS = ('grpc', 'http', 'websocket')
LABEL = {'grpc': 'gRPC', 'http': 'SSE', 'websocket': 'WebSocket'}


def _request_bytes() -> bytes:
    """A stream_doc request for one small document: also what the floor sends back, 1,000 times
    (a plait answer message carries one such document)."""
    from docarray.documents import TextDoc

    from plait.proto import jina_data_pb2

    request = jina_data_pb2.SingleDocumentRequestProto()
    request.header.exec_endpoint = '/gen'
    request.header.request_id = 'bench'
    request.document.CopyFrom(TextDoc(text='token 999').to_protobuf())
    return request.SerializeToString()


async def _floor_run(address: str, payload: bytes, items: int) -> tuple[float, float]:
    """(seconds to the first message, seconds to the last) of one server-streaming call."""
    import grpc

    async with grpc.aio.insecure_channel(address, options=floor.OPTIONS) as channel:
        call = channel.unary_stream(floor.MANY)
        await call(payload, metadata=(('count', '1'),)).read()  # connected before timing
        start = time.perf_counter()
        first, count = None, 0
        async for _ in call(payload, metadata=(('count', str(items)),)):
            count += 1
            if first is None:
                first = time.perf_counter() - start
        assert count == items, count
        return first, time.perf_counter() - start


async def _plait_run(port: int, protocol: str, items: int) -> tuple[float, float]:
    from docarray.documents import TextDoc

    from plait import AsyncClient

    async with AsyncClient(port=port, protocol=protocol) as client:
        async for _ in client.stream_doc(on='/gen', inputs=TextDoc(text='warm'), parameters={'n': 1},
                                         return_type=TextDoc):
            pass  # connected and discovered before timing
        start = time.perf_counter()
        first, count = None, 0
        async for _ in client.stream_doc(on='/gen', inputs=TextDoc(text='go'), parameters={'n': items},
                                         return_type=TextDoc):
            count += 1
            if first is None:
                first = time.perf_counter() - start
        assert count == items, (protocol, count)
        return first, time.perf_counter() - start


def _servers(stack: ExitStack) -> dict[str, dict[str, int]]:
    """topology -> protocol -> port: a Deployment (gRPC straight to the executor; SSE and WebSocket
    through its gateway) and one 3-stage Flow serving all three protocols."""
    from bench_executors import Same, Tokens

    from plait import Deployment, Flow

    servers: dict[str, dict[str, int]] = {'Deployment': {}}
    for protocol in PROTOCOLS:
        dep = stack.enter_context(Deployment(uses=Tokens, protocol=protocol, quiet=True))
        servers['Deployment'][protocol] = dep.port
    flow = stack.enter_context(Flow(protocol=list(PROTOCOLS), quiet=True).add(uses=Same, name='pre')
                               .add(uses=Tokens, name='gen').add(uses=Same, name='post'))
    servers['3-stage Flow'] = dict(zip(PROTOCOLS, flow.ports))
    return servers


def new_section() -> Section:
    return Section('streaming', 'M. Streaming: 1,000 documents from a generator', notes=[
        (f'Executor: `Tokens` in `benchmarks/bench_executors.py`, an async generator yielding {ITEMS:,} '
         '`TextDoc`s as fast as it can; the Flow adds a `Same` stage (one document in, the same out) before '
         'and after it, so each of the 1,000 documents also passes one more executor.'),
        ('Client: the plait `AsyncClient.stream_doc` of each protocol, in the benchmark process, after one warm-up '
         'stream. Time to first item: from the call to the first document; items/s: 1,000 / time to the last.'),
        ('Floor: `benchmarks/floor.py`, a bare grpc.aio server answering one request with 1,000 messages of the '
         'size of plait\'s answer messages (server streaming), read by a bare grpc.aio client in the same '
         'repetition. Targets from the issue: first item within 2x the floor\'s, items/s >= 0.5x the floor.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    items = ITEMS // 4 if settings.quick else ITEMS

    def run() -> None:
        from plait.wire.ports import free_port

        payload = _request_bytes()
        with ExitStack() as stack:
            echo = stack.enter_context(floor.FloorServer(free_port()))
            servers = _servers(stack)
            for _ in range(settings.reps):
                floor_first, floor_total = asyncio.run(_floor_run(echo.address, payload, items))
                for topology, ports in servers.items():
                    for protocol, port in ports.items():
                        first, total = asyncio.run(_plait_run(port, protocol, items))
                        where = f'{topology}, {LABEL[protocol]}'
                        _add(section, f'{where}: time to first item', 'ms', 1000 * first, 1000 * floor_first,
                             Target('ratio_max', 2.0))
                        _add(section, f'{where}: items/s', 'items/s', items / total, items / floor_total,
                             Target('ratio_min', 0.5))

    guarded(section, 'streaming', run)


def _add(section: Section, metric: str, unit: str, plait: float, floor_value: float, target: Any) -> None:
    row = section.row(metric, unit, target)
    row.plait.append(plait)
    row.floor.append(floor_value)


if __name__ == '__main__':
    section_main(new_section, measure)
