"""Start-up to ready, measured in a fresh interpreter so that imports count separately:

    python benchmarks/startup.py deployment 3   # Deployment(uses=NoOp, replicas=3)
    python benchmarks/startup.py flow 5         # Flow().add(uses=NoOp) x 5

The child prints one JSON line of CLOCK_MONOTONIC instants (system-wide on Linux, so they
compare with the parent's) and the RSS of every process it started, taken once ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

T_MAIN = time.clock_gettime(time.CLOCK_MONOTONIC)  # the script starts (stdlib imports above: < 1 ms)


NOTE = ('Start-up: "process start to ready" runs `benchmarks/startup.py` in a fresh interpreter: its '
        'own imports, any helper plait starts (e.g. its fork server) and every service, until `__enter__` '
        'returns; "`with ...(...)` to ready" is from constructing the object to the end of `__enter__`. '
        'CPU and PSS rows add up that process and every process below it. Floor: the echo server '
        'started with Popen until it prints that it listens.')


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def child(kind: str, count: int) -> None:
    from bench_executors import NoOp
    from common import cpu_seconds, descendants, pss_mb, rss_mb

    from plait import Deployment, Flow

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
        tree = descendants(os.getpid())  # the services, and any helper (e.g. a fork server)
        cpu = sum(cpu_seconds(pid) for pid in tree) + time.process_time()
        pss = sum(pss_mb(pid) for pid in [*tree, os.getpid()])
        t_close = now()
    t_closed = now()
    print(json.dumps({'main': T_MAIN, 'imported': t_imported, 'enter': t_enter, 'ready': t_ready,
                      'close': t_close, 'closed': t_closed, 'rss': rss, 'cpu': cpu, 'pss': pss,
                      'processes': len(tree) + 1}), flush=True)


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
            'close': t['closed'] - t['close'], 'rss': t['rss'], 'cpu': t['cpu'], 'pss': t['pss'],
            'processes': t['processes']}


def floor_figures() -> dict[str, float]:
    """Start-up of the floor server: seconds to listening, CPU seconds, RSS and PSS (MB) then."""
    from common import cpu_seconds, pss_mb, rss_mb
    from floor import FloorServer

    from plait.wire.ports import free_port

    with FloorServer(free_port()) as fl:
        return {'start': fl.startup_s, 'cpu': cpu_seconds(fl.pid), 'rss': rss_mb(fl.pid),
                'pss': pss_mb(fl.pid)}


def add_rows(section: Any, kind: str, count: int, t: dict[str, Any], floor: dict[str, float],
             target_s: float | None) -> None:
    """Append one repetition of start-up figures for `count` replicas/executors to `section`,
    beside the floor's (`floor_figures()`)."""
    from results import Target
    from stats import median

    unit = 'replica' if kind == 'deployment' else 'executor'
    what = f'{count} {unit}' + ('s' if count > 1 else '')
    cls = 'Deployment' if kind == 'deployment' else 'Flow'
    proc = section.row(f'start-up, process start to ready ({what})', 's',
                       note='fresh interpreter: imports included')
    enter = section.row(f'start-up, `with {cls}(...)` to ready ({what})', 's',
                        Target('max', target_s) if target_s else None)
    for row, value in ((proc, t['process_to_ready']), (enter, t['enter_to_ready'])):
        row.plait.append(value)
        row.floor.append(floor['start'])
    section.row(f'of which interpreter start + imports of the `with` process ({what})', 's').plait.append(
        t['interpreter'] + t['imports'])
    section.row(f'shutdown, `with` exit ({what})', 's').plait.append(t['close'])
    cpu = section.row(f'CPU used to reach ready, all processes together ({what})', 's',
                      note='the `with` process and every process below it')
    cpu.plait.append(t['cpu'])
    cpu.floor.append(floor['cpu'])
    pss = section.row(f'memory at ready, all processes together ({what})', 'MB',
                      note=f'sum of PSS over {t["processes"]} processes')
    pss.plait.append(t['pss'])
    pss.floor.append(floor['pss'])
    executors = [v for k, v in t['rss'].items() if k != 'gateway']
    rss = section.row(f'RSS at ready, each executor process ({what})', 'MB',
                      note='median over the processes' if len(executors) > 1 else '')
    rss.plait.append(median(executors))
    rss.floor.append(floor['rss'])
    if 'gateway' in t['rss']:
        gateway = section.row(f'RSS at ready, gateway process ({what})', 'MB')
        gateway.plait.append(t['rss']['gateway'])
        gateway.floor.append(floor['rss'])

if __name__ == '__main__':
    child(sys.argv[1], int(sys.argv[2]))
