"""L. The HTTP and WebSocket hot paths, measured as G measures gRPC: a neutral load (wrk for HTTP,
posting the same JSON body; benchmarks/ws_load.py for WebSocket, sending the same prebuilt request
bytes), each in its own process, against a raw relay floor (uvicorn + a bare ASGI app relaying each
body over gRPC to an echo server: the same hops, no framework), a 1-executor plait Flow of that
protocol and, when the interop venv exists, the same Flow served by Jina 3.x. Throughput with 8
connections, latency p50 with 1, CPU per request of every server process."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import floor
from common import HERE, LOCAL, Settings, guarded, python_env, section_main
from hotpath_bench import JINA_READY, FlowServer, jina_table
from load import make_docs
from neutral import _cpu_seconds, write_payloads
from results import Section, Table, Target

CONNECTIONS = 8
BODY = json.dumps({'data': [{'text': 'hello'}], 'parameters': {}})
# plait serves /post; Jina's docarray-v2 HTTP gateway has one route per endpoint (the default one
# is /default) and no /post. The body and the work behind the route are the same.
PATHS = {'floor': '/post', 'plait': '/post', 'jina': '/default'}


def _lua(tmp: Path) -> Path:
    script = tmp / 'post.lua'
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    return script


_UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r'([\d.]+)(us|ms|s)', text).groups()
    return float(number) * _UNITS[unit]


def wrk(url: str, script: Path, connections: int, seconds: float, pids: list[int]) -> dict[str, Any]:
    """One wrk run; requests/s, p50, and CPU per request of `pids` over the run (wrk's own
    start and end fall inside the window: a few ms against seconds)."""
    before = {pid: _cpu_seconds(pid) for pid in pids}
    out = subprocess.run(['wrk', '-t1', f'-c{connections}', f'-d{seconds:g}s', '--latency', '-s', str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    cpu = {pid: _cpu_seconds(pid) - b for pid, b in before.items()}
    if 'Non-2xx' in out or 'Socket errors' in out:
        raise RuntimeError(f'wrk saw failed requests at {url}:\n{out}')
    done = int(re.search(r'(\d+) requests in', out).group(1))
    return {'rps': float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1)),
            'p50_ms': _ms(re.search(r'^\s*50%\s+(\S+)', out, re.M).group(1)),
            'cpu_by_pid': {pid: 1000 * c / done for pid, c in cpu.items()},
            'server_cpu_ms': 1000 * sum(cpu.values()) / done}


def _wait_listening(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOCAL, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f'nothing listens on port {port} after {seconds:g} s')


def _check(url: str) -> None:
    """One request: it must succeed and come back with its document."""
    out = subprocess.run(['curl', '-sS', '-m', '10', '-H', 'Content-Type: application/json', '-d', BODY, url],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    if len(json.loads(out).get('data') or []) != 1:
        raise RuntimeError(f'{url} did not answer the document: {out[:300]}')


def ws_load(url: str, payloads: Path, connections: int, seconds: float, pids: list[int]) -> dict[str, Any]:
    command = [sys.executable, str(HERE / 'ws_load.py'), '--url', url, '--payloads', str(payloads),
               '--clients', str(connections), '--seconds', str(seconds)]
    for pid in pids:
        command += ['--pid', str(pid)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, env=python_env(), check=True)
    result = json.loads(out.stdout)
    result['cpu_by_pid'] = {int(k): v for k, v in result['cpu_by_pid'].items()}
    return result


def _payloads(tmp: Path) -> Path:
    from plait.clients.base import build_requests

    path = tmp / 'small.bin'
    write_payloads(path, (r.SerializeToString() for r in build_requests('/', make_docs(1024), 1, None, None)))
    return path


def _traffic(section: Section, settings: Settings, protocol: str, jina_rows: list[list[str]]) -> None:
    from plait.wire.ports import free_port

    seconds = 1.0 if settings.quick else 3.0
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix='plait-http-') as tmp:
        if protocol == 'http':
            script = _lua(Path(tmp))

            def load(port: int, name: str, connections: int, pids: list[int]) -> dict[str, Any]:
                return wrk(f'http://{LOCAL}:{port}{PATHS[name]}', script, connections, seconds, pids)
        else:
            payloads = _payloads(Path(tmp))

            def load(port: int, name: str, connections: int, pids: list[int]) -> dict[str, Any]:
                return ws_load(f'ws://{LOCAL}:{port}/', payloads, connections, seconds, pids)
        echo = stack.enter_context(floor.FloorServer(free_port()))
        relay = stack.enter_context(floor.FloorServer(free_port(), (echo.address,), mode='http-relay'))
        _wait_listening(relay.port)
        servers = {'floor': (relay.port, [relay.proc.pid, echo.proc.pid], relay.proc.pid)}
        plait = stack.enter_context(FlowServer('plait', 1, free_port(), protocol))
        servers['plait'] = (plait.port, plait.pids(), plait.roles['gateway'])
        if JINA_READY.exists():
            jina = stack.enter_context(FlowServer('jina', 1, free_port(), protocol))
            servers['jina'] = (jina.port, jina.pids(), None)
        if protocol == 'http':
            for name, (port, _, _) in servers.items():
                if name != 'floor':
                    _check(f'http://{LOCAL}:{port}{PATHS[name]}')
        runs: dict[str, list[tuple[dict, dict]]] = {name: [] for name in servers}
        for _ in range(settings.reps):
            for name, (port, pids, _) in servers.items():
                runs[name].append((load(port, name, 1, pids), load(port, name, CONNECTIONS, pids)))
    gateway_of = {name: gateway for name, (_, _, gateway) in servers.items()}
    _rows(section, protocol, runs, gateway_of)
    if 'jina' in runs:
        jina_rows.extend(_jina_rows(section, protocol, runs))


def _rows(section: Section, protocol: str, runs: dict[str, list[tuple[dict, dict]]],
          gateway_of: dict[str, int | None]) -> None:
    def add(metric: str, unit: str, pick: Any, target: Target | None = None, note: str = '') -> None:
        row = section.row(f'{protocol}: {metric}', unit, target, note)
        row.plait = [pick(seq, conc, gateway_of['plait']) for seq, conc in runs['plait']]
        row.floor = [pick(seq, conc, gateway_of['floor']) for seq, conc in runs['floor']]

    add(f'throughput, {CONNECTIONS} connections', 'req/s', lambda s, c, g: c['rps'],
        note=('wrk' if protocol == 'http' else 'ws_load.py') + ', 1 doc per request')
    add('1-doc latency p50, 1 connection', 'ms', lambda s, c, g: s['p50_ms'])
    add('CPU per request, all Flow processes, 1 connection', 'ms', lambda s, c, g: s['server_cpu_ms'],
        note='gateway + executor (+ the idle launcher); floor: relay + echo server')
    add(f'CPU per request, all Flow processes, {CONNECTIONS} connections', 'ms', lambda s, c, g: c['server_cpu_ms'])
    add(f'CPU per request, gateway, {CONNECTIONS} connections', 'ms', lambda s, c, g: c['cpu_by_pid'][g],
        note='floor: the relay')


def _jina_rows(section: Section, protocol: str, runs: dict[str, list[tuple[dict, dict]]]) -> list[list[str]]:
    ratio = section.row(f'{protocol}: throughput, {CONNECTIONS} connections, plait / Jina 3.x', 'x',
                        note='the same load, repetition by repetition')
    ratio.plait = [p[1]['rps'] / j[1]['rps'] for p, j in zip(runs['plait'], runs['jina'])]
    return jina_table(protocol, runs, [
        (f'throughput, {CONNECTIONS} connections', 'req/s', lambda s, c: c['rps'], 0),
        ('1-doc latency p50, 1 connection', 'ms', lambda s, c: s['p50_ms'], 2),
        (f'CPU per request, all Flow processes, {CONNECTIONS} connections', 'ms', lambda s, c: c['server_cpu_ms'], 2)])


def new_section() -> Section:
    return Section('httphot', 'L. The HTTP and WebSocket hot paths: a neutral load, a raw relay floor and Jina', notes=[
        (f'HTTP load: wrk (`-t1 -c{CONNECTIONS}`, and `-c1` for latency), its own process, posting '
         f'`{BODY}` over keep-alive connections. WebSocket load: `benchmarks/ws_load.py`, its own process, '
         f'{CONNECTIONS} (or 1) `websockets` connections to `/` with subprotocol `bytes` (as Jina\'s client), '
         'each sending a prebuilt serialized request (1 document) and waiting for its answer. The same load '
         'for the floor, plait and Jina.'),
        ('Floor: `benchmarks/floor.py http-relay`, uvicorn (httptools, uvloop) with a bare ASGI app that '
         'relays each HTTP body or WebSocket message as it is over gRPC to a bare echo server and answers '
         'with what comes back: the hops of a gateway with no framework, no JSON and no document decoding.'),
        ('plait: a 1-executor Flow of that protocol (`benchmarks/flow_server.py`), HTTP route `/post`; its '
         'gateway parses the JSON (HTTP) or the request (WebSocket), calls the executor over gRPC and answers. '
         'Jina: the same Flow from the interop venv; HTTP route `/default` (Jina\'s docarray-v2 HTTP gateway '
         'has no `/post`).'),
        ('Where the HTTP gateway\'s time goes (py-spy under 8 connections, 2026-12-03): about a quarter in '
         'gRPC\'s completion-queue thread, a fifth in uvicorn and the middleware stack, the rest in parsing the '
         'JSON, validating and encoding the documents and writing the JSON answer. An A/B with the data routes '
         'registered as bare Starlette routes instead of FastAPI routes (2 quick runs each) changed nothing '
         'measurable: gateway CPU per request 2.25x the relay\'s either way.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    jina_rows: list[list[str]] = []
    for protocol in ('http', 'websocket'):
        if protocol == 'http' and not shutil.which('wrk'):
            section.notes.append('**HTTP not measured:** `wrk` is not installed (Debian package `wrk`; '
                                 '`make bench` installs it when root).')
            continue
        guarded(section, f'{protocol} traffic', lambda p=protocol: _traffic(section, settings, p, jina_rows))
    if jina_rows:
        section.tables.append(Table(f'plait beside Jina 3.x, the same load (medians of {settings.reps})',
                                    ['figure', 'plait', 'Jina 3.x', 'plait / Jina', 'raw relay floor'], jina_rows))


if __name__ == '__main__':
    section_main(new_section, measure)
