"""What every benchmark section shares: its processes (memory, CPU, environment, cleanup), the
machine's description, import-time profiles, and the harness each section runs under as its
own process."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results import Section, Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOCAL = '127.0.0.1'
RUN_MARKER = 'PLAIT_BENCH_RUN'  # in the environment of every process a run starts, to find leftovers


# -- processes --------------------------------------------------------------------------------
def rss_mb(pid: int | None) -> float:
    """Resident set size of `pid` in MB (VmRSS of /proc/<pid>/status); nan if unreadable."""
    if pid is None:
        return math.nan
    try:
        with open(f'/proc/{pid}/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def pss_mb(pid: int | None) -> float:
    """Proportional set size of `pid` in MB (pages shared with other processes, e.g. after a
    fork, counted in part); nan if unreadable."""
    try:
        with open(f'/proc/{pid}/smaps_rollup', encoding='ascii') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return math.nan


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', encoding='ascii') as f:
                parent = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by `pid` (all its threads); nan if unreadable."""
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii') as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (OSError, TypeError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def kill_process(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; never raises."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except OSError:
        pass


def python_env() -> dict[str, str]:
    """Environment for benchmark children: benchmarks/ and the repo importable, quiet logs."""
    env = dict(os.environ)
    paths = [str(HERE), str(REPO), env.get('PYTHONPATH', '')]
    env['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.setdefault('PLAIT_LOG_LEVEL', 'WARNING')
    return env


def package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return 'not installed'


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or ''
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    except OSError:
        pass
    load = ' '.join(f'{x:.2f}' for x in os.getloadavg())
    return {
        'date': datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
        'nproc': str(os.cpu_count()),
        'cpu': cpu or 'unknown',
        'os': f'{platform.system()} {platform.release()}',
        'python': platform.python_version(),
        'grpcio': package_version('grpcio'),
        'protobuf': package_version('protobuf'),
        'docarray': package_version('docarray'),
        'plait': package_version('plait'),
        'PLAIT_* environment of the services': ' '.join(
            f'{k}={v}' for k, v in sorted(python_env().items())
            if k.startswith('PLAIT_') and k != RUN_MARKER),
        'load average at start (1/5/15 min)': load,
    }


_IMPORT_LINE = re.compile(r'^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)')


def import_times(command: list[str]) -> tuple[list[tuple[float, float, int, str]], float]:
    """Run `command` (a python command line) under `-X importtime`: each import as
    (cumulative ms, self ms, nesting depth, module), slowest first, and the total ms of
    top-level imports."""
    assert Path(command[0]).name.startswith('python'), command
    proc = subprocess.run([command[0], '-X', 'importtime', *command[1:]], capture_output=True, text=True,
                          timeout=60, env=python_env(), check=False)
    entries = []
    total = 0.0
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            self_ms, cumulative_ms = int(match[1]) / 1000, int(match[2]) / 1000
            depth = max(0, (len(match[3]) - 1) // 2)
            total += cumulative_ms if depth == 0 else 0
            entries.append((cumulative_ms, self_ms, depth, match[4]))
    entries.sort(reverse=True)
    return entries, total


def import_table(title: str, command: list[str], top: int = 12) -> tuple[Table, float]:
    """The `top` slowest imports of `command` as a Table, and the total import time (ms)."""
    entries, total = import_times(command)
    rows = [[f'`{module}`', str(depth), f'{cumulative:.1f}', f'{self_ms:.1f}']
            for cumulative, self_ms, depth, module in entries[:top]]
    return Table(f'{title} (total {total:.0f} ms of top-level imports, one run)',
                 ['module', 'nesting depth', 'cumulative ms', 'self ms'], rows), total


# -- the harness a section runs under ---------------------------------------------------------
@dataclass
class Settings:
    reps: int
    quick: bool


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f'signal {signum}')  # unwinds `with Flow()` blocks: children stopped


def section_main(new_section: Callable[[], Section], measure: Callable[[Section, Settings], None]) -> None:
    """Parse `--reps N --quick --out FILE`, fill a new section with `measure`, and write its
    JSON, also with what was measured before a failure or an interruption."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--quick', action='store_true', help='fewer requests: a smoke run')
    parser.add_argument('--out', default=None, help='where to write the JSON result (default: stdout)')
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    start = time.monotonic()
    section = new_section()
    try:
        measure(section, Settings(max(1, args.reps), args.quick))
    except KeyboardInterrupt:  # stopped from outside: keep what was measured so far
        section.error = 'interrupted'
    section.seconds = time.monotonic() - start
    text = json.dumps(section.to_json(), indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding='utf-8')
    else:
        print(text)


def guarded(section: Section, what: str, fn: Callable[[], None]) -> None:
    """Run one part of a section; a failure becomes a note instead of losing the section."""
    try:
        fn()
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - report it in the section and go on with the next part
        import traceback

        traceback.print_exc(file=sys.stderr)
        section.notes.append(f'**{what} failed:** `{type(e).__name__}: {str(e).splitlines()[0][:200]}`')
