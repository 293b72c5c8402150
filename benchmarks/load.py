"""Traffic through plait as a user sends it (the blocking `Client`, `AsyncClient` tasks), and
the standard set of traffic figures, measured beside the same traffic on the raw-grpcio
floor, interleaved repetition by repetition so both see the same machine noise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import floor
from common import LOCAL, Settings
from results import Section, Target
from stats import median, ms, percentile, time_calls

LATENCY_BUDGET_S = 5.0  # per latency run: a slow protocol gets fewer samples, not a longer run


@dataclass
class Plan:
    """How much traffic one repetition sends."""

    count: int = 1000          # sequential 1-doc requests timed
    warmup: int = 100
    clients: int = 8
    seconds: float = 2.0       # per throughput run
    total_docs: int = 10_000
    request_size: int = 100

    @classmethod
    def of(cls, settings: Settings) -> Plan:
        return cls(count=200, warmup=30, seconds=0.5, total_docs=2000) if settings.quick else cls()


def make_docs(count: int) -> Any:
    from plait import Document, DocumentArray

    return DocumentArray([Document(text=f'hello world {i}') for i in range(count)])


def request_bytes(docs: Any, endpoint: str = '/') -> list[bytes]:
    """The serialized DataRequestProtos the plait Client would send for `docs` (batches of 100)."""
    from plait.clients.base import build_requests

    return [r.SerializeToString() for r in build_requests(endpoint, docs, 100, None, None)]


# -- plait traffic ----------------------------------------------------------------------------
def client_latency(port: int, protocol: str, count: int, warmup: int) -> list[float]:
    """Seconds per sequential 1-doc `Client.post`, after `warmup` posts."""
    from plait import Client

    doc = make_docs(1)[0]
    client = Client(host=LOCAL, port=port, protocol=protocol)
    try:
        for _ in range(warmup):
            client.post('/', doc)
        return time_calls(lambda: client.post('/', doc), count, LATENCY_BUDGET_S)
    finally:
        client.close()


async def _async_throughput(port: int, protocol: str, clients: int, seconds: float) -> float:
    from plait import AsyncClient

    doc = make_docs(1)[0]
    pool = [AsyncClient(host=LOCAL, port=port, protocol=protocol) for _ in range(clients)]

    async def post(client: Any) -> None:
        async for _ in client.post('/', doc):
            pass

    try:
        await asyncio.gather(*(post(c) for c in pool))  # connected before timing
        counts = [0] * clients
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            while time.perf_counter() < deadline:
                await post(pool[i])
                counts[i] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return sum(counts) / (time.perf_counter() - start)
    finally:
        await asyncio.gather(*(c.close() for c in pool), return_exceptions=True)


def client_throughput(port: int, protocol: str, clients: int, seconds: float) -> float:
    """Requests/s of `clients` AsyncClient tasks (one event loop, each its own channel)."""
    return asyncio.run(_async_throughput(port, protocol, clients, seconds))


def client_docs_per_s(port: int, protocol: str, docs: Any, request_size: int) -> float:
    """Documents/s of one `Client.post(docs, request_size=...)`, encoding and decoding included."""
    from plait import Client

    client = Client(host=LOCAL, port=port, protocol=protocol)
    try:
        client.post('/', docs[:1])
        start = time.perf_counter()
        result = client.post('/', docs, request_size=request_size)
        elapsed = time.perf_counter() - start
        assert len(result) == len(docs), (len(result), len(docs))
        return len(docs) / elapsed
    finally:
        client.close()


def repeat_probe(check: Callable[[], Any], count: int, warmup: int = 3) -> list[float]:
    """Seconds per call of a readiness check (after `warmup` calls)."""
    for _ in range(warmup):
        check()
    return time_calls(check, count)


# -- the standard traffic figures, beside the floor --------------------------------------------
@dataclass
class TrafficFigures:
    """Which figures to take and what to report them against."""

    label: str = ''                          # prefix for metric names, e.g. '3-executor chain: '
    p50_target: float | None = None          # max plait/floor ratio for the 1-doc p50
    throughput: bool = True
    docs_per_s: bool = True


def measure_traffic(section: Section, settings: Settings, port: int, protocol: str,
                    floor_server: floor.FloorServer, figures: TrafficFigures) -> None:
    """Latency p50/p99, 8-client throughput and docs/s through plait at `port`, each
    repetition beside the same measurement on the floor."""
    plan = Plan.of(settings)
    one = request_bytes(make_docs(1))[0]
    docs = make_docs(plan.total_docs)
    batches = request_bytes(docs)
    p50_target = Target('ratio_max', figures.p50_target) if figures.p50_target else None
    name = figures.label
    p50 = section.row(f'{name}1-doc latency p50', 'ms', p50_target)
    p99 = section.row(f'{name}1-doc latency p99', 'ms')
    tput = section.row(f'{name}throughput, {plan.clients} concurrent clients', 'req/s',
                       note=f'{plan.clients} AsyncClient tasks in one event loop') \
        if figures.throughput else None
    dps = section.row(f'{name}docs/s, {plan.total_docs:,} docs in requests of {plan.request_size}',
                      'docs/s', note='Client encode+decode included; floor echoes prebuilt bytes') \
        if figures.docs_per_s else None
    for _ in range(settings.reps):
        floor_times = ms(asyncio.run(floor.latency(floor_server.address, one, plan.count, plan.warmup)))
        plait_times = ms(client_latency(port, protocol, plan.count, plan.warmup))
        p50.floor.append(percentile(floor_times, 50))
        p50.plait.append(percentile(plait_times, 50))
        p99.floor.append(percentile(floor_times, 99))
        p99.plait.append(percentile(plait_times, 99))
        if tput is not None:
            tput.floor.append(
                asyncio.run(floor.throughput(floor_server.address, one, plan.clients, plan.seconds)))
            tput.plait.append(client_throughput(port, protocol, plan.clients, plan.seconds))
        if dps is not None:
            dps.floor.append(plan.total_docs / asyncio.run(floor.stream(floor_server.address, batches)))
            dps.plait.append(client_docs_per_s(port, protocol, docs, plan.request_size))


def readiness_rows(section: Section, settings: Settings, metric: str, check: Callable[[], Any],
                   floor_check: Callable[[int], list[float]] | None, target_ms: float | None,
                   count: int = 30) -> None:
    """p50 of `check()` (plait) and `floor_check(count)` (raw grpc) per repetition."""
    row = section.row(metric, 'ms', Target('max', target_ms) if target_ms else None)
    for _ in range(settings.reps):
        row.plait.append(median(ms(repeat_probe(check, count))))
        if floor_check is not None:
            row.floor.append(median(ms(floor_check(count))))
