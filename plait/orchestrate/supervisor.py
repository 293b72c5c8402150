"""Keeping a group's processes alive: a process that dies while its group runs (crash,
kill -9, OOM) is started again on the same port after a growing delay; one that keeps dying
is given up on after a bound, with a clear log line."""

from __future__ import annotations

import enum
import logging
import select
import threading
import time
from typing import Callable, Sequence

from plait.errors import RuntimeFailedToStart
from plait.orchestrate.process import ServiceProcess
from plait.policies import RestartPolicy


class ProcessState(enum.Enum):
    RUNNING = 'running'          # started (ready or still starting)
    RESTART_DUE = 'restart due'  # exited; starts again when its delay is over
    GIVEN_UP = 'given up'        # exited too often within the window: left down


_MOVES = {
    ProcessState.RUNNING: {ProcessState.RESTART_DUE, ProcessState.GIVEN_UP},
    ProcessState.RESTART_DUE: {ProcessState.RUNNING},
    ProcessState.GIVEN_UP: set(),
}


class Supervisor:
    """A daemon thread watching `processes`; `is_running()` says whether the group still wants
    them (checked under `lock`, the same lock the group's stop takes)."""

    def __init__(self, processes: Sequence[ServiceProcess], policy: RestartPolicy, lock: threading.Lock,
                 is_running: Callable[[], bool], logger: logging.Logger):
        self.processes = list(processes)
        self.policy = policy
        self._lock = lock
        self._is_running = is_running
        self._logger = logger
        self._restarts: dict[str, list[float]] = {p.label: [] for p in self.processes}
        self._state = {p.label: ProcessState.RUNNING for p in self.processes}
        self._due: dict[str, float] = {}  # when each RESTART_DUE process starts again
        self._thread = threading.Thread(target=self._loop, name='plait-supervisor', daemon=True)

    def start(self) -> None:
        if self.policy.enabled:
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._is_running():
                    return
                now = time.monotonic()
                for p in self.processes:
                    self._check(p, now)
            self._read_ready_pipes(timeout=0.1)

    def _move(self, p: ServiceProcess, new: ProcessState) -> None:
        old = self._state[p.label]
        if new not in _MOVES[old]:
            raise RuntimeError(f'supervisor: {p.label} cannot go from {old.value} to {new.value}')
        self._state[p.label] = new

    def _check(self, p: ServiceProcess, now: float) -> None:
        state = self._state[p.label]
        if state is ProcessState.GIVEN_UP:
            return
        if state is ProcessState.RESTART_DUE:
            if now >= self._due[p.label]:
                del self._due[p.label]
                self._move(p, ProcessState.RUNNING)
                self._logger.info('restarting %s', p.label)
                p.start()
            return
        if p.proc is None or p.proc.poll() is None:
            return
        code = p.proc.returncode
        p.wait_or_kill(now)  # reap it and close its pipes
        recent = [t for t in self._restarts[p.label] if now - t < self.policy.window]
        if len(recent) >= self.policy.max_restarts:
            self._move(p, ProcessState.GIVEN_UP)
            tail = '\n'.join(f'    {line}' for line in list(p.tail)[-10:])
            self._logger.error('%s exited with code %s and has restarted %d times in %.0f s: giving up on it. '
                               'Last lines of its log:\n%s', p.label, code, len(recent), self.policy.window, tail)
            return
        delay = self.policy.delay(len(recent))
        recent.append(now)
        self._restarts[p.label] = recent
        self._move(p, ProcessState.RESTART_DUE)
        self._due[p.label] = now + delay
        self._logger.warning('%s (pid %s) exited with code %s; restarting in %.1f s (restart %d of at most %d '
                             'in %.0f s)', p.label, p.pid, code, delay, len(recent), self.policy.max_restarts,
                             self.policy.window)

    def _read_ready_pipes(self, timeout: float) -> None:
        waiting = {fd: p for p in self.processes if (fd := p.ready_fd()) is not None}
        if not waiting:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(list(waiting), [], [], timeout)
        except (OSError, ValueError):  # a pipe closed by a concurrent stop
            return
        with self._lock:
            for fd in readable:
                p = waiting[fd]
                if p.ready_fd() != fd:
                    continue
                try:
                    p.on_readable()
                    self._logger.info('%s is back (pid %s)', p.label, p.pid)
                except RuntimeFailedToStart:
                    pass  # it died while starting: the next check restarts it (or gives up)

    def given_up(self) -> set[str]:
        return {label for label, state in self._state.items() if state is ProcessState.GIVEN_UP}
