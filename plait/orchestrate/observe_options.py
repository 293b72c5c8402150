"""Monitoring ports for the processes of a Flow or Deployment: `port_monitoring` is one port,
or one per replica ('9091,9092' or a list, as Jina takes it); those not given are picked free,
never twice in this process, so many replicas on one host never clash."""

from __future__ import annotations

from typing import Any, Union

from plait.errors import BadConfig
from plait.wire.ports import free_port

PortsOption = Union[int, str, list, tuple, None]


def monitoring_ports(value: PortsOption, count: int, who: str) -> list[int]:
    """`count` ports from `port_monitoring`, in process order; free ones for those not given."""
    if value is None or value == '':
        given: list[Any] = []
    elif isinstance(value, str):
        given = [p.strip() for p in value.split(',') if p.strip()]
    elif isinstance(value, (list, tuple)):
        given = list(value)
    else:
        given = [value]
    try:
        ports = [int(p) for p in given]
    except (TypeError, ValueError):
        raise BadConfig(f'{who}: port_monitoring={value!r}: give a port, a list of ports or "9091,9092"') from None
    if len(ports) > count:
        raise BadConfig(f'{who}: port_monitoring={value!r} names {len(ports)} ports for {count} process(es)')
    if any(not 0 < p < 65536 for p in ports):
        raise BadConfig(f'{who}: port_monitoring={value!r}: ports are between 1 and 65535')
    return ports + [free_port() for _ in range(count - len(ports))]
