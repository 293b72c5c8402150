"""A group of microservice processes started together and stopped together: parallel start
with a progress line, abort at the first failure, no orphan on exit, exception or signal."""

from __future__ import annotations

import atexit
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Optional, Sequence

from plait.logs import get_logger
from plait.orchestrate.process import ServiceProcess, stop_all, wait_all_ready
from plait.orchestrate.supervisor import Supervisor
from plait.policies import RestartPolicy

_live_groups: 'weakref.WeakSet[ProcessGroup]' = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for group in list(_live_groups):
        group.stop()


class ProcessGroup:
    """Processes started together; stopped in tiers (a gateway before the executors it
    needs, so its in-flight requests can finish) and restarted when they die."""

    def __init__(self, processes: Sequence[ServiceProcess], grace: float = 10.0,
                 stop_first: Sequence[str] = (), restart: Optional[RestartPolicy] = None):
        self.processes = list(processes)
        self.grace = grace
        self.stop_first = set(stop_first)
        self.restart = restart or RestartPolicy()
        self._lock = threading.Lock()
        self._supervisor: Optional[Supervisor] = None
        self.running = False

    def start(self, timeout_ready_ms: Optional[int], what: str, show_progress: bool = True) -> None:
        """Start every process in parallel and return once all are ready; on any failure stop
        the ones already started and raise RuntimeFailedToStart."""
        timeout = None if timeout_ready_ms is None or timeout_ready_ms < 0 else timeout_ready_ms / 1000
        _live_groups.add(self)
        self.running = True
        try:
            for p in self.processes:
                p.start()
            with _progress(what, len(self.processes), show_progress) as advance:
                wait_all_ready(self.processes, timeout, on_ready=lambda p: advance())
        except BaseException:
            self.stop(grace=min(self.grace, 1.0))  # nothing was served yet: no drain to wait for
            raise
        self._supervisor = Supervisor(self.processes, self.restart, self._lock, lambda: self.running,
                                      get_logger(what))
        self._supervisor.start()

    def stop(self, grace: Optional[float] = None) -> None:
        """SIGTERM the first tier, wait for it (bounded by the grace period), then the rest;
        SIGKILL whatever outlives its grace period."""
        grace = self.grace if grace is None else grace
        with self._lock:
            if not self.running:
                return
            self.running = False
            first = [p for p in self.processes if p.label in self.stop_first]
            rest = [p for p in self.processes if p.label not in self.stop_first]
            # the grace period bounds the whole stop: what the first tier did not use is left
            # for the rest (at least 1 s), so stopping never takes much more than grace + 1 s
            deadline = time.monotonic() + grace + 1
            if first:
                stop_all(first, grace + 1)
            stop_all(rest, max(deadline - time.monotonic(), 1.0))
            _live_groups.discard(self)

    def by_label(self, label: str) -> Optional[ServiceProcess]:
        return next((p for p in self.processes if p.label == label), None)


class _progress:
    """A rich progress line on a terminal; nothing when output is not a terminal."""

    def __init__(self, what: str, total: int, enabled: bool):
        self.what, self.total = what, total
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(SpinnerColumn(), TextColumn('Waiting {task.description}'), BarColumn(),
                                  TextColumn('{task.completed}/{task.total}'), transient=True)
        self._progress.start()
        task = self._progress.add_task(self.what, total=self.total)
        return lambda: self._progress.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


CTRL_C_GRACE = 1.0  # seconds in-flight requests get when the user presses Ctrl-C


class Terminated(KeyboardInterrupt):
    """SIGTERM in the main thread: unwinds like Ctrl-C, but the processes are stopped with
    the full grace period (in-flight requests finish), as a deploy expects."""


def exit_grace(exc_type: Optional[type], interrupted: bool) -> Optional[float]:
    """The grace period for leaving a `with Flow()/Deployment()` block: Ctrl-C (also one
    caught by `block()`) means "now", a short drain; SIGTERM or a normal exit, the full one."""
    if interrupted or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
                       and not issubclass(exc_type, Terminated)):
        return CTRL_C_GRACE
    return None


class StopOnSignal:
    """While active in the main thread, SIGTERM behaves like Ctrl-C (raises Terminated, a
    KeyboardInterrupt), so a `with Flow()` block unwinds and stops its processes."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> 'StopOnSignal':
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)
            self._installed = True
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise Terminated(f'signal {signum}')

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
