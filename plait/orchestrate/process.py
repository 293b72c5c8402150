"""One microservice as an OS process: started with a fresh interpreter, ready when it writes
a line on an inherited pipe (no polling), its output passed through and its tail kept for
error messages, stopped with SIGTERM then SIGKILL, never left behind."""

from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from plait.auth import SECRET_ENVS
from plait.errors import RuntimeFailedToStart
from plait.orchestrate.forkserver import ForkedProcess, ForkServer

TAIL_LINES = 30


def _child_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    # tokens and secrets reach a child only when its parent gives them (`extra`), never inherited
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENVS}
    # the child imports what the parent can: user modules next to the script, editable installs
    paths = [p for p in sys.path if p]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(dict.fromkeys(paths))
    env['PLAIT_PARENT_PID'] = str(os.getpid())
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.update(extra or {})
    return env


def prewarm() -> None:
    """Get process start-up going early (called when a Flow or Deployment is built)."""
    ForkServer.prewarm(_child_env())


class ServiceProcess:
    """A child process running `python -m <module> <args>` that reports readiness on a pipe."""

    def __init__(self, label: str, module: str, args: Sequence[str], env: Optional[dict[str, str]] = None,
                 echo: bool = True):
        self.label = label
        self.module = module
        self.args = list(args)
        self.extra_env = env or {}
        self.echo = echo
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.proc: Optional[subprocess.Popen | ForkedProcess] = None
        self._ready_read: Optional[int] = None
        self._pump: Optional[threading.Thread] = None
        self.ready = False
        self.starts = 0  # a restart is start number 2, 3...: the process reports it in its metrics

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.ready = False  # a restart is not ready until it says so (watchers may look meanwhile)
        read_fd, write_fd = os.pipe()
        self.starts += 1
        env = _child_env({**self.extra_env, 'PLAIT_READY_FD': str(write_fd), 'PLAIT_RESTARTS': str(self.starts - 1)})
        try:
            server = ForkServer.get(env)
            proc = self._fork(server, env, write_fd) if server is not None else None
            if proc is None:
                proc = subprocess.Popen(
                    [sys.executable, '-m', self.module, *self.args],
                    env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C goes to the parent, which stops children in order
                )
            self.proc = proc  # never None in between: others read pid and liveness concurrently
        finally:
            os.close(write_fd)
        self._ready_read = read_fd
        self._pump = threading.Thread(target=self._pump_output, name=f'log-{self.label}', daemon=True)
        self._pump.start()

    def _fork(self, server: ForkServer, env: dict[str, str], ready_fd: int) -> Optional[ForkedProcess]:
        out_read, out_write = os.pipe()
        try:
            pid = server.spawn(self.module, self.args, env, out_write, ready_fd)
        except OSError:
            os.close(out_read)
            return None  # fall back to a fresh interpreter
        finally:
            os.close(out_write)
        return ForkedProcess(server, pid, os.fdopen(out_read, 'rb'), [self.module, *self.args])

    def _pump_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with self.proc.stdout:
            for raw in self.proc.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                self.tail.append(line)
                if self.echo:
                    try:
                        sys.stderr.write(line + '\n')
                    except (ValueError, OSError):  # stderr closed at interpreter exit
                        pass

    def failure(self, why: str) -> RuntimeFailedToStart:
        if self._pump is not None:
            self._pump.join(timeout=1)
        tail = '\n'.join(f'    {line}' for line in self.tail) or '    (no output)'
        return RuntimeFailedToStart(f'{self.label} {why}. Last lines of its log:\n{tail}')

    def ready_fd(self) -> Optional[int]:
        return None if self.ready else self._ready_read

    def on_readable(self) -> None:
        """Read the ready pipe: a line means ready; EOF without one means the process died."""
        assert self._ready_read is not None
        data = os.read(self._ready_read, 64)
        os.close(self._ready_read)
        self._ready_read = None
        if data.startswith(b'ready'):
            self.ready = True
            return
        code = self.proc.wait(timeout=5) if self.proc else None
        raise self.failure(f'exited with code {code} before it was ready')

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        if self._ready_read is not None:
            os.close(self._ready_read)
            self._ready_read = None
        if self._pump is not None:
            self._pump.join(timeout=1)


def wait_all_ready(processes: Sequence[ServiceProcess], timeout: Optional[float],
                   on_ready: Optional[callable] = None) -> None:
    """Block until every process said ready. Raises RuntimeFailedToStart at once when one
    exits first, or when `timeout` seconds (None = forever) pass."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        waiting = {p.ready_fd(): p for p in processes if p.ready_fd() is not None}
        if not waiting:
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            slow = next(iter(waiting.values()))
            raise slow.failure(f'was not ready within {timeout:.1f}s (timeout_ready)')
        readable, _, _ = select.select(list(waiting), [], [], remaining if remaining is not None else 1.0)
        for fd in readable:
            waiting[fd].on_readable()
            if on_ready is not None:
                on_ready(waiting[fd])


def stop_all(processes: Sequence[ServiceProcess], grace: float) -> None:
    """SIGTERM to all at once, then SIGKILL to whatever is still running after `grace` s."""
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p.wait_or_kill(deadline)
