"""Shared test fixtures: free ports, and a guard that no test leaves a process behind."""

from __future__ import annotations

import os
import signal

import pytest

from flow_helpers import wait_until
from plait.wire.ports import free_port


def _children(pid: int | str) -> set[int]:
    pids: set[int] = set()
    try:
        tasks = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f'/proc/{pid}/task/{task}/children') as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return pids


def _is_fork_server(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return b'plait.orchestrate.forkserver' in f.read()
    except OSError:
        return False


def child_pids() -> set[int]:
    """Live processes this test process started, directly or through plait's fork server
    (which lives as long as the test session and is not counted itself); zombies excluded."""
    pids: set[int] = set()
    for pid in _children('self'):
        pids |= _children(pid) if _is_fork_server(pid) else {pid}
    live = set()
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                if f.read().split(')')[-1].split()[0] != 'Z':
                    live.add(pid)
        except OSError:
            pass
    return live


@pytest.fixture(autouse=True)
def no_orphans():
    """Fail a test that leaves a child process running; kill what it left."""
    before = child_pids()
    yield
    left: set[int] = set()

    def settled() -> bool:
        # the look that ends the wait decides: a second look could catch the fork server
        # between its fork and its exec (still showing our command line) and call it an orphan
        nonlocal left
        left = child_pids() - before
        return not left
    wait_until(settled, timeout=5, interval=0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f'processes left running after the test: {sorted(left)}'


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def wait():
    """`wait(predicate, timeout, what=..., interval=..., abort=...)`: poll until `predicate()` is
    true and return the seconds it took; fail the test naming `what` when `timeout` runs out,
    or at once with the reason `abort()` returns (e.g. the process died)."""
    def wait(predicate, timeout: float = 30.0, what: str = 'the condition', interval: float = 0.02,
             abort=None) -> float:
        took = wait_until(predicate, timeout, interval, abort)
        if took is None:
            pytest.fail(f'{what}: not within {timeout} s')
        return took
    return wait
