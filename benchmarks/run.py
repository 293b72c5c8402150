"""`make bench`: run every benchmark section, each in its own process, and write BENCHMARKS.md.

    python benchmarks/run.py                 # 3 repetitions, writes ./BENCHMARKS.md
    python benchmarks/run.py --reps 5
    python benchmarks/run.py --quick --only deployment flow --out /tmp/b.md

A section that fails or hangs is reported as such and the others still run; every process a
section started is gone before the next one begins (checked, and killed by id if not)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import HERE, REPO, RUN_MARKER, machine_info, python_env
from results import Section, render_section, targets_summary

# key -> (module, what it measures); run in this order
SECTIONS = {
    'deployment': ('deployment_bench', 'A. Deployment'),
    'flow': ('flow_bench', 'B. Flow'),
    'probe': ('probe_bench', 'C. plait ping'),
    'http': ('http_bench', 'D. HTTP / WebSocket'),
    'breakdown': ('breakdown_bench', 'E. where the time goes'),
    'batching': ('batching_bench', 'F. dynamic batching'),
    'hotpath': ('hotpath_bench', 'G. gateway hot path'),
    'observability': ('observability_bench', 'H. observability on and off'),
    'auth': ('auth_bench', 'I. authentication'),
    'streams': ('streams_bench', 'J. the stream engine'),
    'client': ('client_bench', 'K. client memory'),
    'httphot': ('http_hotpath_bench', 'L. HTTP hot path'),
    'streaming': ('streaming_bench', 'M. streaming'),
}


def run_section(key: str, args: argparse.Namespace) -> Section:
    module, title = SECTIONS[key]
    with tempfile.TemporaryDirectory(prefix='plait-bench-') as tmp:
        out = Path(tmp) / f'{key}.json'
        command = [sys.executable, str(HERE / f'{module}.py'), '--reps', str(args.reps), '--out', str(out)]
        if args.quick:
            command.append('--quick')
        print(f'== {title} ...', file=sys.stderr, flush=True)
        start = time.monotonic()
        proc = subprocess.Popen(command, env=python_env(), stdin=subprocess.DEVNULL)
        error = ''
        try:
            code = proc.wait(timeout=args.section_timeout)
            if code != 0:
                error = f'exited with code {code}'
        except subprocess.TimeoutExpired:
            error = f'did not finish within {args.section_timeout:.0f} s; stopped'
            stop(proc)
        except KeyboardInterrupt:
            stop(proc)
            raise
        finally:
            leftovers = kill_leftovers()
        if out.exists():
            section = Section.from_json(json.loads(out.read_text(encoding='utf-8')))
        else:
            section = Section(key, title)
        section.error = section.error or error
        if leftovers:
            section.notes.append(f'{leftovers} process(es) were still running after the section '
                                 'and were killed.')
        print(f'   {title}: {time.monotonic() - start:.0f} s{" — " + error if error else ""}',
              file=sys.stderr, flush=True)
        return section


def stop(proc: subprocess.Popen) -> None:
    """Interrupt a section like Ctrl-C (it unwinds its `with` blocks, stopping what it
    started); once more if the first one was lost (Python drops an exception raised inside a
    `__del__`); then SIGKILL. Whatever it leaves behind, kill_leftovers() finds."""
    for wait in (5, 10):
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def _marked_pids() -> list[int]:
    """Processes whose environment carries this run's marker (all started by this run)."""
    me = f'{RUN_MARKER}={os.getpid()}'.encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                if me in f.read().split(b'\0'):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_leftovers(wait: float = 3.0) -> int:
    """Give children of a finished section `wait` s to exit on their own (they watch their
    parent), then SIGKILL, by pid, those still there; returns how many were killed."""
    deadline = time.monotonic() + wait
    while (pids := _marked_pids()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def render(sections: list[Section], machine: dict[str, str], args: argparse.Namespace, seconds: float) -> str:
    command = 'make bench' if not args.quick and args.reps == 3 and not args.only else \
        'python benchmarks/run.py ' + ' '.join(sys.argv[1:])
    lines = [
        '# plait benchmarks', '',
        ('Generated by `make bench` (`benchmarks/run.py`); do not edit by hand. Every plait figure stands '
         'beside the raw-grpcio floor measured in the same run, repetition by repetition. Cells show the '
         f'**median of {args.reps} repetitions** with the range (min–max) in small print; ratios are '
         'plait median / floor median. Targets are reported, never asserted.'), '',
        (f'Reproduce: `{command}` from the repository root (about {max(1, round(seconds / 60))} min; '
         '`python benchmarks/run.py --reps 5` for tighter medians, `--only flow probe` for some sections, '
         '`--quick` for a smoke run).'), '',
        '## Machine', '', '| | |', '|---|---|',
    ]
    lines += [f'| {k} | {v} |' for k, v in machine.items()]
    lines += [f'| load average at end (1/5/15 min) | {" ".join(f"{x:.2f}" for x in os.getloadavg())} |',
              f'| whole run | {seconds:.0f} s |', '',
              ('The machine is shared and small (2 cores): client, gateway and executors compete for the '
               'same cores, and other work may run at the same time (see the load average). Compare ratios, '
               'not absolute numbers, between runs.'), '']
    lines += targets_summary(sections)
    for section in sections:
        lines.append(render_section(section))
    return '\n'.join(lines).rstrip() + '\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--reps', type=int, default=3, help='repetitions per figure (median reported)')
    parser.add_argument('--quick', action='store_true', help='less traffic per repetition: a smoke run')
    parser.add_argument('--only', nargs='+', choices=list(SECTIONS), help='run only these sections')
    parser.add_argument('--out', default=str(REPO / 'BENCHMARKS.md'))
    parser.add_argument('--section-timeout', type=float, default=420.0, help='seconds per section')
    args = parser.parse_args()
    os.environ[RUN_MARKER] = str(os.getpid())
    signal.signal(signal.SIGTERM, _raise_interrupt)
    machine = machine_info()
    start = time.monotonic()
    try:
        sections = [run_section(key, args) for key in (args.only or SECTIONS)]
    except KeyboardInterrupt:
        print(f'interrupted: {args.out} not written', file=sys.stderr)
        return 130
    seconds = time.monotonic() - start
    Path(args.out).write_text(render(sections, machine, args, seconds), encoding='utf-8')
    print(f'wrote {args.out} in {seconds:.0f} s', file=sys.stderr)
    print('\n'.join(targets_summary(sections)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
