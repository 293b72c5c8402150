"""Helpers for the Flow and gateway tests: grpcurl, bounded polling, process checks, and
running a Python script as its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
GRPCURL = str(Path(sys.executable).parent / 'grpcurl')


def grpcurl(address: str, method: str, data: dict | None = None, timeout: float = 15,
            headers: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`grpcurl -plaintext [-H HEADER...] [-d DATA] ADDRESS METHOD`, as the seeds run it."""
    args = [GRPCURL, '-plaintext']
    for header in headers:
        args += ['-H', header]
    if data is not None:
        args += ['-d', json.dumps(data)]
    args += [address, method]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def grpcurl_json(address: str, method: str, data: dict | None = None) -> Any:
    """grpcurl's JSON answer; fails the test with grpcurl's error when the call failed."""
    done = grpcurl(address, method, data)
    assert done.returncode == 0, f'grpcurl {method} on {address} failed: {done.stderr}'
    return json.loads(done.stdout)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02,
               abort: Callable[[], Any] | None = None) -> float | None:
    """The one wait of the tests: poll `predicate` until true; the seconds it took, or None if
    `timeout` passed first. `abort` (e.g. "the process died") is asked each round: whatever
    true it returns fails the test at once, as the reason. The `wait` fixture wraps it."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if abort is not None and (reason := abort()):
            pytest.fail(str(reason))
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[-1].split()[0] != 'Z'
    except OSError:
        return False


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def children_of(pid: int) -> set[int]:
    """Live direct children of `pid`."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f'/proc/{pid}/task/{task}/children') as f:
                found.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return {p for p in found if alive(p)}


def script_env(**extra: str) -> dict[str, str]:
    """Environment for a script run as its own process: it imports plait and tests/ helpers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('PLAIT_')}
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), str(TESTS), env.get('PYTHONPATH', '')])
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra)
    return env


def run_script(code: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    """Run `code` with a fresh interpreter, wait for it and capture its output."""
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
        f.write(textwrap.dedent(code))
    try:
        return subprocess.run([sys.executable, f.name], capture_output=True, text=True, timeout=timeout,
                              env=script_env(**env), check=False)
    finally:
        os.unlink(f.name)


class Script:
    """A script running in the background whose output lines are collected as they come."""

    def __init__(self, code: str, **env: str):
        with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
            f.write(textwrap.dedent(code))
        self._path = f.name
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, self._path], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=script_env(**env))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))

    def wait_for_line(self, needle: str, timeout: float = 60) -> str:
        """The first output line containing `needle`; fails if the script exits or time runs out."""
        def found() -> str | None:
            return next((line for line in list(self.lines) if needle in line), None)

        def exited() -> bool:
            return self.proc.poll() is not None and not self._reader.is_alive() and not found()

        wait_until(lambda: found() or exited(), timeout, interval=0.05)
        line = found()
        if line is None:
            raise AssertionError(f'no line with {needle!r}; output so far:\n' + '\n'.join(self.lines[-40:]))
        return line

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the exit code (SIGKILL after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        os.unlink(self._path)
