"""A. A Deployment of one no-op Executor: the client talks to the executor process directly
(one replica) or through a gateway (several). Each figure beside the raw-grpcio floor."""

from __future__ import annotations

import asyncio

import floor
import startup
from common import LOCAL, Section, Settings, Target, guarded, median, rss_mb, section_main
from load import TrafficFigures, measure_traffic, readiness_rows

REPLICA_COUNTS = (1, 3)


def _traffic(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    from plait import Client, Deployment
    from plait.orchestrate.ports import free_port

    from bench_executors import NoOp

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
            readiness_rows(section, settings, '`is_deployment_ready()` when nothing listens, new Client each time',
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
        with floor.FloorServer(_free_port()) as fl:
            floor_start, floor_rss = fl.startup_s, rss_mb(fl.pid)
        for replicas in REPLICA_COUNTS:
            what = f'{replicas} replica' + ('s' if replicas > 1 else '')
            t = startup.measure('deployment', replicas)
            rows = [
                (section.row(f'start-up, process start to ready ({what})', 's',
                             note='fresh interpreter: imports included'), t['process_to_ready']),
                (section.row(f'start-up, `with Deployment(...)` to ready ({what})', 's',
                             Target('max', 0.6) if replicas == 1 else None), t['enter_to_ready']),
            ]
            for row, value in rows:
                row.plait.append(value)
                row.floor.append(floor_start)
            section.row(f'of which interpreter start + `import plait` ({what})', 's').plait.append(
                t['interpreter'] + t['imports'])
            section.row(f'shutdown, `with` exit ({what})', 's').plait.append(t['close'])
            executors = [v for k, v in t['rss'].items() if k != 'gateway']
            rss = section.row(f'RSS at ready, each executor process ({what})', 'MB')
            rss.plait.append(median(executors))
            rss.floor.append(floor_rss)
            if 'gateway' in t['rss']:
                gw = section.row(f'RSS at ready, gateway process ({what})', 'MB')
                gw.plait.append(t['rss']['gateway'])
                gw.floor.append(floor_rss)


def _free_port() -> int:
    from plait.orchestrate.ports import free_port

    return free_port()


def run(settings: Settings) -> Section:
    section = Section('deployment', 'A. Deployment: one no-op Executor', notes=[
        'Executor: `NoOp` in `benchmarks/bench_executors.py`, `@requests def foo(self, docs, **kwargs): pass`. '
        'It is imported by name in the worker, and its documents **are decoded** into a DocumentArray '
        'and encoded back on every request (no type hints: the generic Document).',
        'One replica: the client talks to the executor process directly (no gateway). Three replicas: '
        'a gateway process balances over them.',
        'Floor: a bare `grpc.aio` server in its own process echoing the same serialized '
        'DataRequestProto bytes (1 document) on a unary call, called by a bare `grpc.aio` client; '
        'for docs/s the 100-document requests are echoed over one bidirectional stream; for readiness '
        'a raw `grpc.health.v1.Health/Check`; for start-up, process start to listening.',
        'Latency: blocking `Client.post` of one Document, sequential, after a warm-up. '
        '`is_deployment_ready()` "when nothing listens" uses a Client aimed at a free port.',
    ])
    guarded(section, 'traffic figures', lambda: _run_with_floor(section, settings))
    guarded(section, 'start-up figures', lambda: _startup(section, settings))
    return section


def _run_with_floor(section: Section, settings: Settings) -> None:
    with floor.FloorServer(_free_port()) as fl:
        _traffic(section, settings, fl)


if __name__ == '__main__':
    section_main(run)
