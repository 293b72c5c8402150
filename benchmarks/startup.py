"""Start-up to ready, measured in a fresh interpreter so that imports count separately:

    python benchmarks/startup.py deployment 3   # Deployment(uses=NoOp, replicas=3)
    python benchmarks/startup.py flow 5         # Flow().add(uses=NoOp) x 5

The child prints one JSON line of CLOCK_MONOTONIC instants (system-wide on Linux, so they
compare with the parent's) and the RSS of every process it started, taken once ready."""

from __future__ import annotations

import time

T_MAIN = time.clock_gettime(time.CLOCK_MONOTONIC)  # before any other import of this script

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def child(kind: str, count: int) -> None:
    from plait import Deployment, Flow

    from bench_executors import NoOp
    from common import rss_mb

    t_imported = now()
    if kind == 'deployment':
        service: Any = Deployment(uses=NoOp, replicas=count, quiet=True)
    else:
        service = Flow(quiet=True)
        for _ in range(count):
            service.add(uses=NoOp)
    t_enter = now()
    with service:
        t_ready = now()
        rss = {p.label: rss_mb(p.pid) for p in service._group.processes}
        t_close = now()
    t_closed = now()
    print(json.dumps({'main': T_MAIN, 'imported': t_imported, 'enter': t_enter, 'ready': t_ready,
                      'close': t_close, 'closed': t_closed, 'rss': rss}), flush=True)


def measure(kind: str, count: int, timeout: float = 60.0) -> dict[str, Any]:
    """Run one child; seconds for each phase plus the RSS (MB) of each process at ready."""
    from common import HERE, python_env

    start = now()
    proc = subprocess.run([sys.executable, str(HERE / 'startup.py'), kind, str(count)], capture_output=True,
                          text=True, timeout=timeout, env=python_env(), check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0 or not lines:
        tail = '\n'.join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise RuntimeError(f'startup child {kind} {count} failed (exit {proc.returncode}):\n{tail}')
    t = json.loads(lines[-1])
    return {'process_to_ready': t['ready'] - start, 'interpreter': t['main'] - start,
            'imports': t['imported'] - t['main'], 'enter_to_ready': t['ready'] - t['enter'],
            'close': t['closed'] - t['close'], 'rss': t['rss']}


if __name__ == '__main__':
    child(sys.argv[1], int(sys.argv[2]))
