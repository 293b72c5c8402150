"""What every benchmark section shares: statistics, timing, process memory, the machine's
description, the result model (rows of per-repetition values beside the raw-grpcio floor) and
its Markdown rendering, and the harness each section runs under as its own process."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOCAL = '127.0.0.1'


# -- statistics -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def time_calls(fn: Callable[[], Any], count: int, budget_s: float = math.inf) -> list[float]:
    """Wall time in seconds of each of `count` sequential calls of `fn`; stops early once
    `budget_s` seconds are spent (after at least 100 calls), so a slow path stays bounded."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if start > deadline and len(times) >= 100:
            break
    return times


def ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


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


# -- results ----------------------------------------------------------------------------------
@dataclass
class Target:
    """What a figure is reported against (never asserted): `ratio_max` bounds plait/floor,
    `max` bounds the plait value itself, in the row's unit."""

    kind: str  # 'ratio_max' | 'max'
    value: float

    def describe(self, unit: str) -> str:
        return f'<= {self.value:g}x floor' if self.kind == 'ratio_max' else f'< {self.value:g} {unit}'

    def met(self, plait: float, floor: float) -> bool | None:
        if math.isnan(plait) or (self.kind == 'ratio_max' and (floor is None or math.isnan(floor))):
            return None
        if self.kind == 'ratio_max':
            return plait / floor <= self.value
        return plait < self.value


@dataclass
class Row:
    """One figure: a value per repetition for plait and (optionally) for the floor."""

    metric: str
    unit: str
    plait: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ''


@dataclass
class Table:
    """A free-form table (e.g. the slowest imports of the probe)."""

    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ''

    def row(self, metric: str, unit: str, target: Target | None = None, note: str = '') -> Row:
        """The row named `metric`, created on first use (repetitions append to it)."""
        for existing in self.rows:
            if existing.metric == metric:
                return existing
        new = Row(metric, unit, target=target, note=note)
        self.rows.append(new)
        return new

    def not_measured(self, metric: str, reason: str) -> None:
        self.rows.append(Row(metric, '', note=f'not measured: {reason}'))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        rows = []
        for r in data.get('rows', []):
            target = Target(**r['target']) if r.get('target') else None
            rows.append(Row(r['metric'], r['unit'], r['plait'], r['floor'], target, r.get('note', '')))
        tables = [Table(**t) for t in data.get('tables', [])]
        return cls(data['key'], data['title'], data.get('notes', []), rows, tables,
                   data.get('seconds', 0.0), data.get('error', ''))


# -- rendering --------------------------------------------------------------------------------
_DECIMALS = {'ms': 2, 's': 3, 'MB': 1, 'req/s': 0, 'docs/s': 0, 'µs': 0}


def fmt(value: float, unit: str) -> str:
    if value is None or math.isnan(value):
        return 'n/a'
    decimals = _DECIMALS.get(unit, 2)
    return f'{value:,.{decimals}f}'


def _cell(values: list[float], unit: str) -> str:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return '–'
    text = f'{fmt(median(clean), unit)} {unit}'
    if len(clean) > 1 and fmt(min(clean), unit) != fmt(max(clean), unit):
        text += f' <sub>({fmt(min(clean), unit)}–{fmt(max(clean), unit)})</sub>'
    return text


def render_section(section: Section) -> str:
    out = [f'## {section.title}', '']
    if section.error:
        out += [f'**Section failed:** `{section.error}`', '']
    out += [f'- {note}' for note in section.notes]
    if section.notes:
        out.append('')
    if section.rows:
        out += ['| figure | plait | raw-grpcio floor | plait / floor | target | met? |',
                '|---|---|---|---|---|---|']
        for row in section.rows:
            if not row.plait and row.note.startswith('not measured'):
                out.append(f'| {row.metric} | {row.note} | | | | |')
                continue
            p, f = median(row.plait), median(row.floor)
            ratio = f'{p / f:.2f}x' if row.floor and f and not math.isnan(f) and not math.isnan(p) else ''
            target = row.target.describe(row.unit) if row.target else ''
            met = row.target.met(p, f) if row.target else None
            verdict = {True: 'yes', False: '**no**', None: ''}[met]
            metric = row.metric + (f' <sub>{row.note}</sub>' if row.note else '')
            out.append(f'| {metric} | {_cell(row.plait, row.unit)} | {_cell(row.floor, row.unit)} | '
                       f'{ratio} | {target} | {verdict} |')
        out.append('')
    for table in section.tables:
        out += [f'**{table.title}**', '', '| ' + ' | '.join(table.header) + ' |',
                '|' + '---|' * len(table.header)]
        out += ['| ' + ' | '.join(cells) + ' |' for cells in table.rows]
        out.append('')
    if section.seconds:
        out += [f'<sub>section took {section.seconds:.0f} s</sub>', '']
    return '\n'.join(out)


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
