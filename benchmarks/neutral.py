"""The neutral client: bare `grpc.aio` unary calls of prebuilt serialized DataRequestProtos
(1 document, a distinct request_id each) to `process_single_data`, in a process of its own.
The same client, the same bytes and the same path serve a raw floor, a plait gateway and a
Jina gateway, so what differs between their figures is the server side.

It reports requests/s, latency percentiles, its own CPU per request, and the CPU per request of
each server process given with --pid (read from /proc over the same timed window).

    python benchmarks/neutral.py --address 127.0.0.1:P --payloads FILE --clients 8 --seconds 2 --pid 123 --pid 456
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc

SINGLE_DATA = '/jina.JinaSingleDataRequestRPC/process_single_data'
OPTIONS = [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)]


# -- payload files: length-prefixed request bytes ----------------------------------------------
def write_payloads(path: Path, payloads: Iterable[bytes]) -> None:
    with open(path, 'wb') as f:
        for body in payloads:
            f.write(struct.pack('<Q', len(body)))
            f.write(body)


def read_payloads(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from('<Q', data, pos)
        out.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    return out


def _cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat', encoding='ascii') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def run(address: str, payloads: list[bytes], clients: int, seconds: float, count: int,
              warmup: int, pids: list[int]) -> dict:
    """`clients` tasks, each with its own channel, calling back to back for `seconds` (or until
    `count` calls in all, when given); payloads are taken in turn so request ids differ."""
    channels = [grpc.aio.insecure_channel(address, options=OPTIONS) for _ in range(clients)]
    calls = [c.unary_unary(SINGLE_DATA) for c in channels]
    bodies = itertools.cycle(payloads)
    try:
        for _ in range(max(1, warmup // clients)):
            await asyncio.gather(*(call(next(bodies)) for call in calls))  # connected and warm
        latencies: list[float] = []
        left = [count or sys.maxsize]
        deadline = time.perf_counter() + seconds if not count else float('inf')

        async def worker(call: grpc.aio.UnaryUnaryMultiCallable) -> None:
            while left[0] > 0 and time.perf_counter() < deadline:
                left[0] -= 1
                body = next(bodies)
                start = time.perf_counter()
                await call(body)
                latencies.append(time.perf_counter() - start)

        servers = {pid: _cpu_seconds(pid) for pid in pids}
        own = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(call) for call in calls))
        elapsed = time.perf_counter() - start
        own = time.process_time() - own
        done = len(latencies)
        server_ms = {str(pid): (_cpu_seconds(pid) - before) * 1000 / done for pid, before in servers.items()}
    finally:
        await asyncio.gather(*(c.close() for c in channels))
    return {'requests': done, 'seconds': elapsed, 'rps': done / elapsed,
            'p50_ms': _percentile(latencies, 50) * 1000, 'p99_ms': _percentile(latencies, 99) * 1000,
            'client_cpu_ms': own * 1000 / done, 'server_cpu_ms': server_ms}


def load_arguments(description: str, target: str) -> argparse.ArgumentParser:
    """The command line every neutral load shares: `target` (--address, --url), the payloads,
    the clients, for how long, and the server processes whose CPU it measures."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(target, required=True)
    parser.add_argument('--payloads', required=True, type=Path, help='length-prefixed request bytes')
    parser.add_argument('--clients', type=int, default=1)
    parser.add_argument('--seconds', type=float, default=2.0)
    parser.add_argument('--pid', type=int, action='append', default=[], help='a server process to measure')
    return parser


def main() -> int:
    parser = load_arguments(__doc__, '--address')
    parser.add_argument('--count', type=int, default=0, help='stop after this many calls (instead of --seconds)')
    parser.add_argument('--warmup', type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args.address, read_payloads(args.payloads), args.clients, args.seconds, args.count,
                             args.warmup, args.pid))
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
