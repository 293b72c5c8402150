"""A. A Deployment of one no-op Executor: the client talks to the executor process directly
(one replica) or through a gateway (several). Each figure beside the raw-grpcio floor."""

from __future__ import annotations

import asyncio

import floor
import startup
from common import LOCAL, Settings, guarded, rss_mb, section_main
from load import TrafficFigures, measure_traffic, readiness_rows
from results import Section

REPLICA_COUNTS = (1, 3)


def _traffic(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    from bench_executors import NoOp

    from plait import Client, Deployment
    from plait.wire.ports import free_port

    with Deployment(uses=NoOp, quiet=True) as dep:
        measure_traffic(section, settings, dep.port, 'grpc', fl, TrafficFigures(p50_target=1.5))

        def fresh_client_check(port: int) -> bool:
            with Client(host=LOCAL, port=port) as client:
                return client.is_deployment_ready()

        nobody = free_port()
        idle_client = Client(host=LOCAL, port=nobody)
        try:
            readiness_rows(section, settings, '`is_deployment_ready()` when up', dep.is_deployment_ready,
                           lambda n: asyncio.run(floor.health_check(fl.address, n, fresh_channel=False)), 5)
            readiness_rows(section, settings, '`is_deployment_ready()` when up, new Client each time',
                           lambda: fresh_client_check(dep.port),
                           lambda n: asyncio.run(floor.health_check(fl.address, n, fresh_channel=True)), 5)
            readiness_rows(section, settings, '`is_deployment_ready()` when nothing listens',
                           idle_client.is_deployment_ready,
                           lambda n: asyncio.run(floor.health_check(f'{LOCAL}:{nobody}', n, False)), 50)
            readiness_rows(section, settings,
                           '`is_deployment_ready()` when nothing listens, new Client each time',
                           lambda: fresh_client_check(nobody),
                           lambda n: asyncio.run(floor.health_check(f'{LOCAL}:{nobody}', n, True)), 50)
        finally:
            idle_client.close()
        worker = dep._group.processes[0]
        row = section.row('RSS, executor process, after the traffic above', 'MB')
        row.plait.append(rss_mb(worker.pid))
        row.floor.append(rss_mb(fl.pid))


def _startup(section: Section, settings: Settings) -> None:
    for _ in range(settings.reps):
        floor_start = startup.floor_figures()
        for replicas in REPLICA_COUNTS:
            t = startup.measure('deployment', replicas)
            startup.add_rows(section, 'deployment', replicas, t, floor_start, 0.6 if replicas == 1 else None)


def _free_port() -> int:
    from plait.wire.ports import free_port

    return free_port()


def new_section() -> Section:
    return Section('deployment', 'A. Deployment: one no-op Executor', notes=[
        ('Executor: `NoOp` in `benchmarks/bench_executors.py`, '
         '`@requests def foo(self, docs, **kwargs): pass`. '
         'It is imported by name in the worker, and its documents **are decoded** into a DocumentArray '
         'and encoded back on every request (no type hints: the generic Document).'),
        ('One replica: the client talks to the executor process directly (no gateway). Three replicas: '
         'a gateway process balances over them.'),
        ('Floor: a bare `grpc.aio` server in its own process echoing the same serialized '
         'DataRequestProto bytes (1 document) on a unary call, called by a bare `grpc.aio` client; '
         'for docs/s the 100-document requests are echoed over one bidirectional stream; for readiness '
         'a raw `grpc.health.v1.Health/Check`; for start-up, process start to listening.'),
        ('Latency: blocking `Client.post` of one Document, sequential, after a warm-up. '
         '`is_deployment_ready()` "when nothing listens" uses a Client aimed at a free port.'),
        startup.NOTE,
    ])


def measure(section: Section, settings: Settings) -> None:
    guarded(section, 'traffic figures', lambda: _run_with_floor(section, settings))
    guarded(section, 'start-up figures', lambda: _startup(section, settings))


def _run_with_floor(section: Section, settings: Settings) -> None:
    with floor.FloorServer(_free_port()) as fl:
        _traffic(section, settings, fl)


if __name__ == '__main__':
    section_main(new_section, measure)
