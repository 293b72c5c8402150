"""C. The `plait ping` probe as Kubernetes runs it: a fresh process per check against a live
executor. Wall time and peak memory beside a bare grpcio Health/Check process, plus the
slowest imports of the probe (`python -X importtime`)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import HERE, LOCAL, Settings, guarded, import_table, python_env, section_main
from results import Section, Target
from stats import median

RUNS = 10
TIME_BIN = '/usr/bin/time'


def ping_command(address: str) -> list[str]:
    """The `plait` console script of this interpreter's environment, else `python -m plait.cli.main`."""
    script = Path(sys.executable).parent / 'plait'
    base = [str(script)] if script.exists() else [sys.executable, '-m', 'plait.cli.main']
    return [*base, 'ping', 'executor', address]


def wall_times(command: list[str], runs: int) -> list[float]:
    """Seconds per run of `command`; raises if it does not exit 0."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30, env=python_env(),
                              check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}')
    return times


def peak_rss_mb(command: list[str]) -> tuple[float, str]:
    """Peak RSS of one run of `command` in MB, and how it was measured."""
    if os.access(TIME_BIN, os.X_OK):
        proc = subprocess.run([TIME_BIN, '-v', *command], capture_output=True, text=True, timeout=30,
                              env=python_env(), check=False)
        found = re.search(r'Maximum resident set size \(kbytes\): (\d+)', proc.stderr)
        if found:
            return int(found.group(1)) / 1024, '/usr/bin/time -v'
    import resource

    # ru_maxrss of children is the largest of all children so far: run a fresh helper to isolate it
    code = ('import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); '
            'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')
    out = subprocess.run([sys.executable, '-c', code, *command], capture_output=True, text=True, timeout=30,
                         env=python_env(), check=False)
    del resource
    return int(out.stdout.strip() or 0) / 1024, 'getrusage(RUSAGE_CHILDREN)'


def _measure(section: Section, settings: Settings, port: int) -> None:
    address = f'{LOCAL}:{port}'
    ping = ping_command(address)
    floor_probe = [sys.executable, str(HERE / 'floor.py'), 'probe', '--port', str(port)]
    bare = [sys.executable, '-c', 'pass']
    runs = 3 if settings.quick else RUNS
    wall = section.row(f'`plait ping executor` wall time, median of {runs} runs', 'ms', Target('max', 250),
                       note='fresh process each run')
    peak = section.row('`plait ping executor` peak RSS', 'MB', Target('max', 40))
    bare_wall, bare_peak = [], []
    how = ''
    for _ in range(settings.reps):
        wall.floor.append(median(wall_times(floor_probe, runs)) * 1000)
        wall.plait.append(median(wall_times(ping, runs)) * 1000)
        bare_wall.append(median(wall_times(bare, runs)) * 1000)
        value, how = peak_rss_mb(ping)
        peak.plait.append(value)
        peak.floor.append(peak_rss_mb(floor_probe)[0])
        bare_peak.append(peak_rss_mb(bare)[0])
    peak.note = f'by {how}'
    table, total_ms = import_table('Slowest imports of `python -m plait.cli.main ping executor ...`',
                                   [sys.executable, '-m', 'plait.cli.main', 'ping', 'executor', address])
    section.row('`plait ping` total top-level import time (one run)', 'ms').plait.append(total_ms)
    section.tables.append(table)
    section.notes.append(f'For reference, a bare interpreter (`python -c pass`) takes '
                         f'{median(bare_wall):.0f} ms and peaks at {median(bare_peak):.1f} MB here.')
    shown = ' '.join([Path(ping[0]).name, *ping[1:]])
    section.notes.append(f'Command timed: `{shown}` (exit code 0 checked on every run).')


def unavailable_reason() -> str | None:
    if importlib.util.find_spec('plait.cli') is None or importlib.util.find_spec('plait.cli.main') is None:
        return 'plait.cli.main is not there yet'
    return None


def new_section() -> Section:
    return Section('probe', 'C. The `plait ping` probe', notes=[
        ('Target: a live executor (a one-replica Deployment of the `NoOp` Executor). Floor: '
         '`benchmarks/floor.py probe`, a fresh interpreter that imports grpcio and makes one raw '
         '`Health/Check` against the same executor.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    reason = unavailable_reason()
    if reason:
        section.not_measured('`plait ping executor` wall time and peak RSS', reason)
        return

    def with_live_executor() -> None:
        from bench_executors import NoOp

        from plait import Deployment

        with Deployment(uses=NoOp, quiet=True) as dep:
            _measure(section, settings, dep.port)

    guarded(section, 'probe figures', with_live_executor)
    if shutil.which(TIME_BIN) is None:
        section.notes.append('`/usr/bin/time` is not installed: peak memory read with getrusage.')


if __name__ == '__main__':
    section_main(new_section, measure)
