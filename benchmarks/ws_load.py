"""The neutral WebSocket client: `websockets` connections to `/` (subprotocol `bytes`, as Jina's
own client speaks), each sending a prebuilt serialized DataRequestProto and waiting for its answer,
back to back, in a process of its own. The same client and bytes serve the floor, plait and Jina.
Reports requests/s, latency p50, and the CPU per request of each server process given with --pid.

    python benchmarks/ws_load.py --url ws://127.0.0.1:P/ --payloads FILE --clients 8 --seconds 2 --pid 123
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

import websockets

from neutral import _cpu_seconds, _percentile, load_arguments, read_payloads


async def run(url: str, payloads: list[bytes], clients: int, seconds: float, pids: list[int]) -> dict:
    bodies = itertools.cycle(payloads)
    connections = [await websockets.connect(url, subprotocols=['bytes'], max_size=None) for _ in range(clients)]
    try:
        for ws in connections:  # connected and warm
            for _ in range(20):
                await ws.send(next(bodies))
                await ws.recv()
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(ws: websockets.ClientConnection) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await ws.send(next(bodies))
                answer = await ws.recv()
                if not isinstance(answer, bytes):
                    raise RuntimeError(f'{url}: a text answer to a binary request: {answer[:200]!r}')
                latencies.append(time.perf_counter() - start)

        servers = {pid: _cpu_seconds(pid) for pid in pids}
        start = time.perf_counter()
        await asyncio.gather(*(worker(ws) for ws in connections))
        elapsed = time.perf_counter() - start
        done = len(latencies)
        cpu = {pid: (_cpu_seconds(pid) - before) * 1000 / done for pid, before in servers.items()}
    finally:
        await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    return {'requests': done, 'rps': done / elapsed, 'p50_ms': _percentile(latencies, 50) * 1000,
            'cpu_by_pid': cpu, 'server_cpu_ms': sum(cpu.values())}


def main() -> int:
    args = load_arguments(__doc__, '--url').parse_args()
    result = asyncio.run(run(args.url, read_payloads(args.payloads), args.clients, args.seconds, args.pid))
    result['cpu_by_pid'] = {str(k): v for k, v in result['cpu_by_pid'].items()}
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
