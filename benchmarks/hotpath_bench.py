"""G. The gateway hot path: one neutral client (bare grpc.aio, prebuilt bytes, its own
process) through a 1-executor and a 3-executor plait Flow, beside a raw relay floor (a bare
grpc.aio relay process in front of bare echo servers: the same hops, the same bytes, the same
client) and, when the interop venv exists, beside a Jina Flow. Throughput, latency, CPU per
request of every server process and of the client, and the gateway's memory after large
messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import floor
from common import HERE, LOCAL, REPO, Settings, descendants, guarded, kill_process, python_env, rss_mb, section_main
from load import make_docs
from neutral import write_payloads
from results import Section, Table, Target
from stats import median

JINA_PYTHON = REPO / 'interop' / '.interop-venv' / 'bin' / 'python'
JINA_READY = JINA_PYTHON.parent / 'jina'  # what interop/run.sh checks: Jina is installed
CLIENTS = 8
LARGE_MB = 50
LARGE_COUNT = 4


class FlowServer:
    """benchmarks/flow_server.py as a child process: a plait or Jina Flow of `executors`
    no-op Executors on `port`; stopped by closing its stdin."""

    def __init__(self, framework: str, executors: int, port: int, protocol: str = 'grpc'):
        self.framework = framework
        self.protocol = protocol
        self.executors = executors
        self.port = port
        self.address = f'{LOCAL}:{port}'
        self.proc: subprocess.Popen | None = None
        self.roles: dict[str, int] = {}

    def pids(self) -> list[int]:
        """The launcher and every process below it: the whole Flow."""
        assert self.proc is not None
        return [self.proc.pid, *descendants(self.proc.pid)]

    def __enter__(self) -> FlowServer:
        python = str(JINA_PYTHON) if self.framework == 'jina' else sys.executable
        env = python_env()
        if self.framework == 'jina':
            env['PYTHONPATH'] = str(HERE)  # for flow_server.serve only: never plait on Jina's path
        script = REPO / 'interop' / 'bench_jina_flow.py' if self.framework == 'jina' else HERE / 'flow_server.py'
        self.proc = subprocess.Popen([python, str(script), str(self.executors), str(self.port), self.protocol],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()  # bounded: EOF when the launcher fails
            if not line.startswith(b'{'):
                raise RuntimeError(f'{self.framework} Flow did not start (exit code {self.proc.wait(timeout=60)})')
            self.roles = json.loads(line)['roles']
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for pid in descendants(self.proc.pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        kill_process(self.proc)


def neutral(address: str, payloads: Path, pids: list[int], clients: int, seconds: float = 0,
            count: int = 0, warmup: int = 100) -> dict[str, Any]:
    """One run of benchmarks/neutral.py; CPU per request summed over `pids`."""
    command = [sys.executable, str(HERE / 'neutral.py'), '--address', address, '--payloads', str(payloads),
               '--clients', str(clients), '--seconds', str(seconds), '--count', str(count),
               '--warmup', str(warmup)]
    for pid in pids:
        command += ['--pid', str(pid)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, env=python_env(), check=True)
    result = json.loads(out.stdout)
    result['cpu_by_pid'] = {int(k): v for k, v in result.pop('server_cpu_ms').items()}
    result['server_cpu_ms'] = sum(result['cpu_by_pid'].values())
    return result


def check_route(address: str, payloads: Path, executors: int) -> None:
    """One call through the Flow at `address`: it must succeed and pass every executor (a Flow
    that skips its executors would look fast)."""
    import grpc

    from neutral import SINGLE_DATA, read_payloads
    from plait.proto.jina_data_pb2 import DataRequestProto

    with grpc.insecure_channel(address) as channel:
        reply = DataRequestProto.FromString(channel.unary_unary(SINGLE_DATA)(read_payloads(payloads)[0], timeout=30))
    visited = [route.executor for route in reply.routes]
    expected = [f'executor{i}' for i in range(executors)]
    if reply.header.status.code != 0 or len(reply.data.docs.docs) != 1 or \
            [name for name in visited if name in expected] != expected:
        raise RuntimeError(f'{address}: the Flow did not pass the request through {expected}: status '
                           f'{reply.header.status.code} {reply.header.status.description[:200]!r}, routes {visited}')


def vm_kb(pid: int, field: str) -> float:
    """A field of /proc/<pid>/status in MB (VmRSS, VmHWM = peak RSS)."""
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


@contextmanager
def floors() -> Iterator[dict[int, tuple[floor.FloorServer, list[int]]]]:
    """Three echo servers and two relays: in front of the first (1 executor) and of all three
    in turn (3-executor chain); executors -> (relay, every pid of that floor)."""
    from plait.wire.ports import free_port

    with ExitStack() as stack:
        echoes = [stack.enter_context(floor.FloorServer(free_port())) for _ in range(3)]
        out = {}
        for n in (1, 3):
            relay = stack.enter_context(floor.FloorServer(free_port(), tuple(e.address for e in echoes[:n])))
            out[n] = (relay, [relay.proc.pid, *(e.proc.pid for e in echoes[:n])])
        yield out


def _payload_files(tmp: Path, settings: Settings) -> tuple[Path, Path]:
    from plait import Document, DocumentArray
    from plait.clients.base import build_requests

    small = tmp / 'small.bin'
    write_payloads(small, (r.SerializeToString() for r in build_requests('/', make_docs(4096), 1, None, None)))
    large = tmp / 'large.bin'
    blob = os.urandom(LARGE_MB * 1024 * 1024)
    docs = DocumentArray([Document(blob=blob) for _ in range(LARGE_COUNT)])
    write_payloads(large, (r.SerializeToString() for r in build_requests('/', docs, 1, None, None)))
    return small, large


class _Plan:
    def __init__(self, settings: Settings):
        self.count = 300 if settings.quick else 1000
        self.seconds = 0.7 if settings.quick else 2.0


def _traffic(section: Section, settings: Settings, executors: int, small: Path, large: Path,
             floor_of: tuple[floor.FloorServer, list[int]], jina_rows: list[list[str]]) -> None:
    from plait.wire.ports import free_port

    plan = _Plan(settings)
    label = '1 executor' if executors == 1 else f'{executors}-executor chain'
    relay, floor_pids = floor_of
    with ExitStack() as stack:
        plait = stack.enter_context(FlowServer('plait', executors, free_port()))
        jina = stack.enter_context(FlowServer('jina', executors, free_port())) if JINA_READY.exists() else None
        servers = {'floor': (relay.address, floor_pids), 'plait': (plait.address, plait.pids())}
        if jina is not None:
            servers['jina'] = (jina.address, jina.pids())
        for server in (plait, jina):
            if server is not None:
                check_route(server.address, small, executors)
        runs: dict[str, list[tuple[dict, dict]]] = {name: [] for name in servers}
        for _ in range(settings.reps):
            for name, (address, pids) in servers.items():
                seq = neutral(address, small, pids, clients=1, count=plan.count)
                conc = neutral(address, small, pids, clients=CLIENTS, seconds=plan.seconds)
                runs[name].append((seq, conc))
        _rows(section, label, runs, plait.roles, relay.proc.pid, floor_pids)
        if jina is not None:
            jina_rows.extend(_jina_rows(section, label, runs))
        if executors == 1:
            _memory(section, plait, relay, large)


def _rows(section: Section, label: str, runs: dict[str, list[tuple[dict, dict]]], roles: dict[str, int],
          relay_pid: int, floor_pids: list[int]) -> None:
    def add(metric: str, unit: str, pick: Any, floor_pick: Any = None, target: Target | None = None,
            note: str = '') -> None:
        row = section.row(f'{label}: {metric}', unit, target, note)
        row.plait = [pick(seq, conc) for seq, conc in runs['plait']]
        row.floor = [(floor_pick or pick)(seq, conc) for seq, conc in runs['floor']]

    executors = [pid for role, pid in roles.items() if role.startswith('executor')]
    add(f'throughput, {CLIENTS} concurrent callers', 'req/s', lambda s, c: c['rps'], target=Target('ratio_min', 0.75),
        note='neutral client, 1 doc per request')
    add('1-doc latency p50, sequential', 'ms', lambda s, c: s['p50_ms'])
    add('CPU per request, all Flow processes, sequential', 'ms', lambda s, c: s['server_cpu_ms'],
        note='gateway + executors (+ the idle launcher); floor: relay + echo servers')
    add(f'CPU per request, all Flow processes, {CLIENTS} concurrent', 'ms', lambda s, c: c['server_cpu_ms'])
    add(f'CPU per request, gateway, {CLIENTS} concurrent', 'ms', lambda s, c: c['cpu_by_pid'][roles['gateway']],
        lambda s, c: c['cpu_by_pid'][relay_pid], note='floor: the relay')
    add(f'CPU per request, each executor, {CLIENTS} concurrent', 'ms',
        lambda s, c: median([c['cpu_by_pid'][pid] for pid in executors]),
        lambda s, c: median([c['cpu_by_pid'][pid] for pid in floor_pids[1:]]), note='floor: an echo server')
    add('client CPU per request, sequential', 'ms', lambda s, c: s['client_cpu_ms'], note='the same neutral client')
    add(f'client CPU per request, {CLIENTS} concurrent', 'ms', lambda s, c: c['client_cpu_ms'])


def jina_table(label: str, runs: dict[str, list[tuple[dict, dict]]], figures: list[tuple[str, str, Any, int]]) \
        -> list[list[str]]:
    """Rows of the plait / Jina / floor table: per figure (metric, unit, pick(seq, conc), decimals)
    the medians over the repetitions of `runs` ('plait', 'jina', 'floor')."""
    table = []
    for metric, unit, pick, decimals in figures:
        values = {name: median([pick(*run) for run in runs[name]]) for name in ('plait', 'jina', 'floor')}
        table.append([f'{label}: {metric}', f'{values["plait"]:,.{decimals}f} {unit}',
                      f'{values["jina"]:,.{decimals}f} {unit}', f'{values["plait"] / values["jina"]:.2f}x',
                      f'{values["floor"]:,.{decimals}f} {unit}'])
    return table


def _jina_rows(section: Section, label: str, runs: dict[str, list[tuple[dict, dict]]]) -> list[list[str]]:
    ratio = section.row(f'{label}: throughput, {CLIENTS} concurrent callers, plait / Jina 3.x', 'x',
                        Target('min', 2.0), note='the same neutral client, repetition by repetition')
    ratio.plait = [p[1]['rps'] / j[1]['rps'] for p, j in zip(runs['plait'], runs['jina'])]
    return jina_table(label, runs, [
        (f'throughput, {CLIENTS} concurrent callers', 'req/s', lambda s, c: c['rps'], 0),
        ('1-doc latency p50, sequential', 'ms', lambda s, c: s['p50_ms'], 2),
        ('CPU per request, all Flow processes, sequential', 'ms', lambda s, c: s['server_cpu_ms'], 2),
        (f'CPU per request, all Flow processes, {CLIENTS} concurrent', 'ms', lambda s, c: c['server_cpu_ms'], 2)])


def _memory(section: Section, plait: FlowServer, relay: floor.FloorServer, large: Path) -> None:
    """RSS of the gateway (and the relay) before and 1 s after LARGE_COUNT requests of LARGE_MB."""
    servers = {'plait': (plait.address, plait.roles['gateway'], plait.roles['executor0']),
               'floor': (relay.address, relay.proc.pid, None)}
    figures: dict[str, dict[str, float]] = {}
    for name, (address, gateway, executor) in servers.items():
        before = rss_mb(gateway)
        executor_before = rss_mb(executor)
        neutral(address, large, [], clients=1, count=LARGE_COUNT, warmup=0)
        time.sleep(1.0)
        figures[name] = {'before': before, 'peak': vm_kb(gateway, 'VmHWM'), 'after': rss_mb(gateway),
                         'executor': rss_mb(executor) / executor_before if executor else float('nan')}
    what = f'{LARGE_COUNT} requests of {LARGE_MB} MB'
    for key, metric in (('before', f'gateway RSS before {what}'), ('peak', f'gateway peak RSS during {what}'),
                        ('after', f'gateway RSS 1 s after {what}')):
        row = section.row(metric, 'MB', note='floor: the relay')
        row.plait.append(figures['plait'][key])
        row.floor.append(figures['floor'][key])
    row = section.row(f'gateway RSS after / before {what}', 'x', Target('max', 1.2))
    row.plait.append(figures['plait']['after'] / figures['plait']['before'])
    row.floor.append(figures['floor']['after'] / figures['floor']['before'])
    section.row(f'executor RSS after / before {what}', 'x').plait.append(figures['plait']['executor'])


# What was changed on the hot path, and what each change bought: A/B runs of the same neutral
# client, interleaved repetition by repetition (5 each), 1-executor Flow, on the shared 2-core
# machine under load (2026-12-03); medians. Kept here so that `make bench` reprints them.
CHANGES = Table(
    'What was changed on the gateway hot path and what it bought (A/B, same neutral client, 1-executor Flow, '
    'interleaved, medians of 5, measured under load on 2026-12-03)',
    ['change', 'measured', 'before', 'after', 'after / before'],
    [['serving processes on uvloop (`PLAIT_UVLOOP=0` vs default, same code)', 'CPU per request, all Flow '
      'processes, 8 concurrent', '2.04 ms', '1.77 ms', '0.87x'],
     ['', 'of which gateway / executor', '1.17 / 0.89 ms', '0.98 / 0.78 ms', '0.84x / 0.87x'],
     ['', 'CPU per request, sequential; p50', '2.75 ms; 3.48 ms', '2.12 ms; 2.37 ms', '0.77x; 0.68x'],
     ['', 'throughput, 8 concurrent callers', '460 req/s', '599 req/s', '1.30x'],
     ['all of this change together (code before vs after: uvloop; a chain walked in the caller\'s task, '
      'no task, future or gather per deployment; cached endpoint metadata; no message held by an iterator)',
      'CPU per request, 8 concurrent; sequential', '1.84 ms; 2.45 ms', '1.69 ms; 1.95 ms', '0.92x; 0.80x'],
     ['', 'p50 sequential; throughput, 8 concurrent', '2.60 ms; 613 req/s', '2.15 ms; 688 req/s', '0.83x; 1.12x'],
     ['no message kept alive by an iterator (gateway stream to each replica, both Call handlers, '
      'bounded_map) + malloc_trim after messages of 4 MB or more', 'RSS after / before 4 requests of 50 MB: '
      'gateway; executor', '5.02x; 4.01x', '1.06x; 1.02x', ''],
     ['', 'gateway peak RSS during them', '593 MB', '368 MB', '0.62x'],
     ['(where the rest goes) an `async def` no-op instead of the sync one: no hop to the user thread',
      'executor CPU per request, 8 concurrent', '0.92 ms', '0.60 ms', '0.65x']])

PROFILE_NOTE = (
    'Where the time goes (py-spy, gateway and executor under 8 concurrent callers): in the gateway, '
    'plait\'s own routing code is under 5% of the samples; the rest is grpc\'s completion-queue thread and '
    'event-loop callbacks around each message, which is what uvloop trims. In the executor, the hop of a sync '
    'method to its worker thread (submit, GIL hand-over, wake-up of the loop) costs about a third of its CPU per '
    'request (table below, last row); it stays, since a sync method must never block health checks, as in Jina.')


def new_section() -> Section:
    return Section('hotpath', 'G. The gateway hot path: a neutral client, a raw relay floor and Jina', notes=[
        ('Client: `benchmarks/neutral.py`, its own process: bare grpc.aio unary calls to '
         '`process_single_data` with prebuilt serialized requests (1 document, a distinct request_id '
         f'each); sequential (1 caller) and {CLIENTS} concurrent callers (one channel each). The same '
         'client, bytes and path for the floor, plait and Jina.'),
        ('Floor: `benchmarks/floor.py relay`, a bare grpc.aio relay process in front of bare grpc.aio '
         'echo servers (one for the 1-executor Flow; three called in turn for the 3-executor chain): '
         'the same hops as the Flow, with nothing done on them.'),
        ('Flows: `benchmarks/flow_server.py`, no-op Executors (documents decoded and encoded back by '
         'each executor) behind the gRPC gateway, started in a process of their own. CPU per request is '
         'utime+stime from /proc of each process over the timed window, divided by the requests.'),
        ('Jina: the same Flow served by Jina 3.x from the interop venv (`make interop` builds '
         '`interop/.interop-venv`); skipped with a note when it does not exist.'),
        PROFILE_NOTE,
    ], tables=[CHANGES])


def measure(section: Section, settings: Settings) -> None:
    if not JINA_READY.exists():
        section.notes.append(f'**Jina comparison skipped:** `{JINA_READY.relative_to(REPO)}` does not exist '
                             '(run `make interop` once to build it).')
    jina_rows: list[list[str]] = []

    def traffic() -> None:
        with tempfile.TemporaryDirectory(prefix='plait-hotpath-') as tmp, floors() as floor_of:
            small, large = _payload_files(Path(tmp), settings)
            for executors in (1, 3):
                guarded(section, f'{executors}-executor traffic',
                        lambda n=executors: _traffic(section, settings, n, small, large, floor_of[n], jina_rows))

    guarded(section, 'hot path', traffic)
    if jina_rows:
        section.tables.append(Table(f'plait beside Jina 3.x, the same neutral client (medians of {settings.reps})',
                                    ['figure', 'plait', 'Jina 3.x', 'plait / Jina', 'raw relay floor'], jina_rows))


if __name__ == '__main__':
    section_main(new_section, measure)
