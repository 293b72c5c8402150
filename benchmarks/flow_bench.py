"""B. Flows of no-op Executors behind the gRPC gateway: traffic through one and three hops,
start-up, and readiness while ready and with an executor killed. Each figure beside the
single-hop raw-grpcio floor."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import floor
import startup
from common import LOCAL, Settings, guarded, rss_mb, section_main
from load import TrafficFigures, measure_traffic, readiness_rows, repeat_probe
from results import Section, Target
from stats import median, ms

EXECUTOR_COUNTS = (1, 3, 5)
STARTUP_TARGETS = {1: 0.6, 5: 1.0}
NOT_SERVING = 2  # grpc.health.v1 ServingStatus


def _flow(executors: int) -> Any:
    from bench_executors import NoOp

    from plait import Flow

    flow = Flow(quiet=True)
    for _ in range(executors):
        flow.add(uses=NoOp)
    return flow


def _traffic(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    with _flow(1) as f:
        measure_traffic(section, settings, f.port, 'grpc', fl, TrafficFigures(p50_target=2.5))
        for label in ('gateway', 'executor0/rep-0'):
            row = section.row(f'RSS, {label.split("/")[0]} process, after the traffic above', 'MB')
            row.plait.append(rss_mb(f.process_of(label).pid))
            row.floor.append(rss_mb(fl.pid))
    with _flow(3) as f:
        measure_traffic(section, settings, f.port, 'grpc', fl,
                        TrafficFigures(label='3-executor chain: ', throughput=False, docs_per_s=False))


def _raw_readiness(address: str) -> Any:
    return lambda n: asyncio.run(floor.health_check(address, n, fresh_channel=False, service='readiness'))


def _readiness(section: Section, settings: Settings, fl: floor.FloorServer) -> None:
    def floor_check(count: int) -> list[float]:
        return asyncio.run(floor.health_check(fl.address, count, fresh_channel=False))

    for _ in range(settings.reps):
        one_rep = Settings(reps=1, quick=settings.quick)
        with _flow(1) as f:
            gateway = f'{LOCAL}:{f.port}'
            readiness_rows(section, one_rep, '`f.is_flow_ready()` when ready', f.is_flow_ready,
                           floor_check, 5)
            _raw_row(section, 'raw `Health/Check(service="readiness")` when ready', gateway, floor_check, 5)
            os.kill(f.process_of('executor0/rep-0').pid, signal.SIGKILL)
            detected = _wait_not_serving(gateway, timeout=10.0)
            row = section.row('gateway notices a killed executor (kill -9 to readiness NOT_SERVING)', 'ms')
            row.plait.append(detected * 1000 if detected is not None else float('nan'))
            down = repeat_probe(f.is_flow_ready, 30)
            answers = {f.is_flow_ready() for _ in range(3)}
            row = section.row('`f.is_flow_ready()` with an executor down', 'ms', Target('max', 50),
                              note=f'answers {sorted(answers)}')
            row.plait.append(median(ms(down)))
            row.floor.append(median(ms(floor_check(30))))
            _raw_row(section, 'raw `Health/Check(service="readiness")` with an executor down', gateway,
                     floor_check, 50)


def _raw_row(section: Section, metric: str, gateway: str, floor_check: Any, target_ms: float) -> None:
    row = section.row(metric, 'ms', Target('max', target_ms))
    row.plait.append(median(ms(_raw_readiness(gateway)(30))))
    row.floor.append(median(ms(floor_check(30))))


def _wait_not_serving(address: str, timeout: float) -> float | None:
    """Seconds until the gateway's readiness service leaves SERVING, polled every ~2 ms."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        status = asyncio.run(floor.health_status(address, 'readiness', timeout=0.5))
        if status == NOT_SERVING:
            return time.perf_counter() - start
        time.sleep(0.002)
    return None


def _startup(section: Section, settings: Settings) -> None:
    for _ in range(settings.reps):
        floor_start = startup.floor_figures()
        for count in EXECUTOR_COUNTS:
            startup.add_rows(section, 'flow', count, startup.measure('flow', count), floor_start,
                             STARTUP_TARGETS.get(count))


def new_section() -> Section:
    return Section('flow', 'B. Flow: no-op Executors behind the gRPC gateway', notes=[
        ('Same `NoOp` Executor as in A (documents decoded and re-encoded by the executor). The gateway '
         'passes documents through as bytes (`RawDataRequest`), never decoding them.'),
        ('Every request makes two hops (client → gateway → executor); the floor is the single-hop raw '
         'grpc echo of A, so a 2-hop system cannot reach 1.0x.'),
        ('Readiness "with an executor down": the only executor of a 1-executor Flow is killed with '
         'SIGKILL; the gateway learns it from its Health/Watch stream, then the checks are timed. Floor '
         'for readiness rows: a raw `Health/Check` on the floor server.'),
        startup.NOTE,
    ])


def measure(section: Section, settings: Settings) -> None:
    def traffic_and_readiness() -> None:
        from plait.wire.ports import free_port

        with floor.FloorServer(free_port()) as fl:
            guarded(section, 'traffic figures', lambda: _traffic(section, settings, fl))
            guarded(section, 'readiness figures', lambda: _readiness(section, settings, fl))

    guarded(section, 'traffic and readiness', traffic_and_readiness)
    guarded(section, 'start-up figures', lambda: _startup(section, settings))


if __name__ == '__main__':
    section_main(new_section, measure)
