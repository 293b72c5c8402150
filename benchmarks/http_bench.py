"""D. HTTP and WebSocket through a one-executor Flow: the same traffic figures as B, sent
with `Client(protocol='http' | 'websocket')`, beside the single-hop raw-grpcio floor. A
protocol whose gateway or client is not available yet is reported as not measured."""

from __future__ import annotations

import importlib.util

import floor
from common import Settings, guarded, rss_mb, section_main
from load import TrafficFigures, measure_traffic
from results import Section

PROTOCOLS = ('http', 'websocket')
# what each protocol needs: the gateway's server and the client's transport
NEEDS = {'http': ('plait.serve.gateway.http', 'plait.clients.http'),
         'websocket': ('plait.serve.gateway.http', 'plait.clients.websocket')}


def unavailable_reason(protocol: str) -> str | None:
    for module in NEEDS[protocol]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            what = 'gateway' if '.serve.' in module else 'client'
            return f'{protocol} {what} not available (no module {module})'
    return None


def _measure(section: Section, settings: Settings, protocol: str, fl: floor.FloorServer) -> None:
    from bench_executors import NoOp

    from plait import Flow

    with Flow(protocol=protocol, quiet=True).add(uses=NoOp) as f:
        measure_traffic(section, settings, f.port, protocol, fl, TrafficFigures(label=f'{protocol}: '))
        row = section.row(f'{protocol}: RSS, gateway process, after the traffic above', 'MB')
        row.plait.append(rss_mb(f.process_of('gateway').pid))
        row.floor.append(rss_mb(fl.pid))


def new_section() -> Section:
    return Section('http', 'D. HTTP and WebSocket gateway: one no-op Executor', notes=[
        ('A one-executor Flow with `protocol="http"` or `"websocket"`, driven by the plait Client of '
         'that protocol; same figures and floor as B (the floor stays the raw gRPC echo: it shows what '
         'the protocol costs on top of gRPC).'),
    ])


def measure(section: Section, settings: Settings) -> None:
    available = []
    for protocol in PROTOCOLS:
        reason = unavailable_reason(protocol)
        if reason:
            section.not_measured(f'{protocol}: latency, throughput, docs/s', reason)
        else:
            available.append(protocol)
    if not available:
        return

    def measure_all() -> None:
        from plait.wire.ports import free_port

        with floor.FloorServer(free_port()) as fl:
            for protocol in available:
                guarded(section, f'{protocol} figures', lambda p=protocol: _measure(section, settings, p, fl))

    guarded(section, 'http/websocket figures', measure_all)


if __name__ == '__main__':
    section_main(new_section, measure)
