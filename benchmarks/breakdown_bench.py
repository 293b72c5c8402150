"""E. Where the time of a 1-doc request goes: CPU per request of each process (the same
serialized request sent as raw bytes, so each server's own cost shows), CPU per request of
the plait clients against a raw grpc.aio client, and the in-process cost of the document
codec. CPU time is less disturbed by a busy machine than wall time."""

from __future__ import annotations

import asyncio
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import floor
from common import LOCAL, Settings, cpu_seconds, guarded, import_table, section_main
from load import client_latency, make_docs, request_bytes
from results import Section, Table
from stats import median, percentile

SINGLE = '/jina.JinaSingleDataRequestRPC/process_single_data'


def _server_cpu_ms(pids: dict[str, int], address: str, path: str, payload: bytes,
                   count: int) -> dict[str, float]:
    """CPU ms per request of each process in `pids` while `count` raw unary calls go to `address`."""
    before = {label: cpu_seconds(pid) for label, pid in pids.items()}
    asyncio.run(floor.latency(address, payload, count, 0, path))
    return {label: (cpu_seconds(pid) - before[label]) * 1000 / count for label, pid in pids.items()}


def _client_cpu_ms(fn: Callable[[], Any], count: int) -> float:
    """CPU ms per request of this process (all threads) while `fn` sends `count` requests."""
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000 / count


async def _async_client_posts(port: int, count: int) -> None:
    from plait import AsyncClient

    doc = make_docs(1)[0]
    async with AsyncClient(host=LOCAL, port=port) as client:
        for _ in range(count):
            async for _ in client.post('/', doc):
                pass


def _cpu(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    from bench_executors import NoOp

    from plait import Deployment, Flow

    count = 300 if settings.quick else 1500
    payload = request_bytes(make_docs(1))[0]
    with Deployment(uses=NoOp, quiet=True) as dep, Flow(quiet=True).add(uses=NoOp) as flow:
        dep_address, flow_address = f'{LOCAL}:{dep.port}', f'{LOCAL}:{flow.port}'
        worker = dep._group.processes[0].pid
        flow_pids = {'gateway': flow.process_of('gateway').pid,
                     'executor': flow.process_of('executor0/rep-0').pid}
        for address, path in ((fl.address, floor.UNARY), (dep_address, SINGLE), (flow_address, SINGLE)):
            asyncio.run(floor.latency(address, payload, 0, 50, path))  # warm
        client_latency(dep.port, 'grpc', 0, 50)
        rows = {
            'executor': section.row('server CPU per request: executor process (Deployment, direct)', 'ms'),
            'flow_executor': section.row('server CPU per request: executor process (in a Flow)', 'ms'),
            'gateway': section.row('server CPU per request: gateway process (Flow)', 'ms'),
            'client': section.row('client CPU per request: blocking `Client.post`', 'ms',
                                  note='client process, all threads'),
            'async_client': section.row('client CPU per request: `AsyncClient.post`', 'ms'),
        }
        for _ in range(settings.reps):
            floor_server = _server_cpu_ms({'floor': fl.pid}, fl.address, floor.UNARY, payload, count)['floor']
            direct = _server_cpu_ms({'executor': worker}, dep_address, SINGLE, payload, count)
            rows['executor'].plait.append(direct['executor'])
            in_flow = _server_cpu_ms(flow_pids, flow_address, SINGLE, payload, count)
            rows['flow_executor'].plait.append(in_flow['executor'])
            rows['gateway'].plait.append(in_flow['gateway'])
            raw_client = _client_cpu_ms(
                lambda: asyncio.run(floor.latency(dep_address, payload, count, 0, SINGLE)), count)
            rows['client'].plait.append(
                _client_cpu_ms(lambda: client_latency(dep.port, 'grpc', count, 0), count))
            rows['async_client'].plait.append(
                _client_cpu_ms(lambda: asyncio.run(_async_client_posts(dep.port, count)), count))
            for key in ('executor', 'flow_executor', 'gateway'):
                rows[key].floor.append(floor_server)
            for key in ('client', 'async_client'):
                rows[key].floor.append(raw_client)


def _transport_shapes(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    """Raw grpc.aio only: a unary call against one message on an open stream, same bytes."""
    count = 300 if settings.quick else 1500
    payload = request_bytes(make_docs(1))[0]
    shapes = {'unary call (what every plait hop uses today)': floor.latency,
              'message on an open bidi stream, ping-pong': floor.stream_latency}
    figures: dict[str, dict[str, list[float]]] = {
        name: {'p50': [], 'server': [], 'client': []} for name in shapes}
    for _ in range(settings.reps):
        for name, measure in shapes.items():
            server, client = cpu_seconds(fl.pid), time.process_time()
            times = asyncio.run(measure(fl.address, payload, count, 50))
            figures[name]['server'].append((cpu_seconds(fl.pid) - server) * 1000 / (count + 50))
            figures[name]['client'].append((time.process_time() - client) * 1000 / (count + 50))
            figures[name]['p50'].append(percentile(times, 50) * 1000)
    rows = [[name, f'{median(f["p50"]):.2f}', f'{median(f["server"]):.2f}', f'{median(f["client"]):.2f}']
            for name, f in figures.items()]
    section.tables.append(Table('Raw grpc.aio, the same 1-doc bytes: unary call vs one message on an open '
                                f'stream (medians of {settings.reps})',
                                ['shape', 'p50 ms', 'server CPU ms/req', 'client CPU ms/req'], rows))


def _codec_steps(docs: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Each step of the document path for one request carrying `docs`, as a callable."""
    from plait.documents import DocumentArray
    from plait.proto import jina_data_pb2
    from plait.request import DataRequest
    from plait.documents import decode_docs, encode_docs

    parse = jina_data_pb2.DataRequestProto.FromString
    body = request_bytes(docs)[0]
    decoded = decode_docs(parse(body).data, DocumentArray)

    def encode() -> bytes:
        response = jina_data_pb2.DataRequestProto()
        encode_docs(decoded, response.data)
        return response.SerializeToString()

    return [
        ('client: build + serialize the request', lambda: request_bytes(docs)),
        ('executor: parse + decode the documents', lambda: decode_docs(parse(body).data, DocumentArray)),
        ('executor: encode + serialize the response', encode),
        ('client: parse + decode the response', lambda: DataRequest(parse(body)).docs),
    ]


def _codec(section: Section, settings: Settings) -> None:
    for size in (1, 100):
        number = (200 if settings.quick else 1000) if size == 1 else (10 if settings.quick else 40)
        for name, fn in _codec_steps(make_docs(size)):
            row = section.row(f'{name} ({size} doc{"s" if size > 1 else ""})', 'µs')
            for _ in range(settings.reps):
                row.plait.append(median([timeit.timeit(fn, number=number) / number * 1e6 for _ in range(3)]))


# What each serving process imports before it can say ready (as `python -c` lines).
PROCESS_IMPORTS = {
    'executor': 'import plait.serve.worker; from plait.uses import load_class_reference; '
                'load_class_reference("bench_executors:NoOp")().endpoint_specs',
    'gateway': 'import plait.serve.gateway.runtime, plait.serve.gateway.grpc_gateway',
}


def _imports(section: Section) -> None:
    for process, code in PROCESS_IMPORTS.items():
        table, total = import_table(f'Slowest imports of the {process} process (`python -c \'{code}\'`)',
                                    [sys.executable, '-c', code], top=10)
        section.tables.append(table)
        section.row(f'{process} process: top-level import time (one run)', 'ms').plait.append(total)


def new_section() -> Section:
    return Section('breakdown', 'E. Where the time of a request goes', notes=[
        ('Server rows: the serialized 1-doc request is sent by a bare grpc.aio client as raw bytes to '
         '`process_single_data`, sequentially; CPU time (utime+stime from /proc) of each server process is '
         'divided by the number of requests. Floor: the same for the raw echo server.'),
        ('Client rows: CPU time of the client process per 1-doc request (building, sending, decoding), '
         'against a bare grpc.aio client sending the prebuilt bytes to the same executor.'),
        'Codec rows: in-process wall time of each step of the document path, no network.',
        ('Import rows and tables: `python -X importtime` of what each serving process imports before it is '
         'ready; on 2 cores, N processes starting together pay this N times over.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    def cpu() -> None:
        from plait.wire.ports import free_port

        with floor.FloorServer(free_port()) as fl:
            _cpu(section, settings, fl)
            _transport_shapes(section, settings, fl)

    guarded(section, 'CPU per request', cpu)
    guarded(section, 'codec costs', lambda: _codec(section, settings))
    guarded(section, 'import times', lambda: _imports(section))


if __name__ == '__main__':
    section_main(new_section, measure)
