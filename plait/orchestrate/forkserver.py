"""A fork server: one helper process per user process that imports plait's serving code
(grpc, docarray, pydantic: most of a replica's start-up time) once, then forks a fresh
microservice process per request in a few milliseconds.

Forking is safe here because the server never creates a gRPC object, thread or event loop
before it forks (the pattern gRPC documents for multiprocessing); every child builds its own.
Children are reported back with their pid, and their exit status when they end, so the
parent handles them like subprocess.Popen objects. Set PLAIT_FORKSERVER=0 to start every
process with a fresh interpreter instead.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Optional

from plait.serve.lifecycle import process_alive

PRELOAD = ('plait.serve.worker', 'plait.serve.gateway.runtime', 'plait.documents', 'plait.executor')
_HEADER = struct.Struct('!I')


# -- framing: a length-prefixed JSON message, optionally carrying file descriptors ---------------
def _send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = b''
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise EOFError
        chunks += chunk
    return chunks


def _recv(sock: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 4)
    if not head:
        raise EOFError
    head += _recv_exactly(sock, _HEADER.size - len(head))
    (size,) = _HEADER.unpack(head)
    return json.loads(_recv_exactly(sock, size)), list(fds)


# -- the server process ------------------------------------------------------------------------
def _run_child(request: dict, fds: list[int], sock: socket.socket) -> None:
    """In the forked child: become the requested service process. Never returns."""
    code = 1
    try:
        sock.close()
        out_fd, ready_fd = fds
        os.setsid()  # its own process group: signals are sent to it and its children only
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.close(devnull)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        os.environ['PLAIT_READY_FD'] = str(ready_fd)
        sys.path[:] = request['sys_path']
        sys.argv = [request['module'], *request['args']]
        import random
        random.seed()  # do not share the server's random state between children
        code = importlib.import_module(request['module']).main(request['args']) or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {'exited': pid, 'code': os.waitstatus_to_exitcode(status)})


def serve(fd: int, parent: int) -> int:
    for module in PRELOAD:
        importlib.import_module(module)
    sock = socket.socket(fileno=fd)
    _send(sock, {'ready': True})
    while process_alive(parent):
        readable, _, _ = select.select([sock], [], [], 0.1)
        _reap(sock)
        if not readable:
            continue
        try:
            request, fds = _recv(sock)
        except (EOFError, ConnectionError):
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        # the child's garbage collector must not write to the objects it inherits, or every
        # page holding them stops being shared (the child's memory doubles at its first full
        # collection): move them out of the collector's reach
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            _run_child(request, fds, sock)
        for f in fds:
            os.close(f)
        _send(sock, {'id': request['id'], 'pid': pid})
    return 0


# -- the parent's side ---------------------------------------------------------------------------
class ForkedProcess:
    """A process forked by the fork server, with the part of the Popen interface plait uses."""

    def __init__(self, server: 'ForkServer', pid: int, stdout: Any, args: list[str]):
        self._server = server
        self.pid = pid
        self.stdout = stdout
        self.args = args
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._server.wait_for_exit(0.05)
        assert self.returncode is not None
        return self.returncode


class ForkServer:
    _instance: Optional['ForkServer'] = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls, env: dict[str, str]) -> Optional['ForkServer']:
        """The running fork server of this process (started on first use), or None when
        disabled or unavailable."""
        if os.environ.get('PLAIT_FORKSERVER', '1') == '0' or not hasattr(os, 'fork'):
            return None
        with cls._instance_lock:
            if cls._instance is None or not cls._instance.alive():
                if cls._instance is not None:
                    cls._instance.close()
                try:
                    cls._instance = ForkServer(env)
                except (OSError, EOFError, TimeoutError):
                    cls._instance = None
            return cls._instance

    @classmethod
    def prewarm(cls, env: dict[str, str]) -> None:
        """Start the fork server in the background, so it is ready when processes are."""
        if cls._instance is None and os.environ.get('PLAIT_FORKSERVER', '1') != '0':
            threading.Thread(target=cls.get, args=(env,), name='plait-forkserver-start', daemon=True).start()

    def __init__(self, env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'plait.orchestrate.forkserver', str(theirs.fileno()), str(os.getpid())],
            env={k: v for k, v in env.items() if k != 'PLAIT_READY_FD'}, pass_fds=(theirs.fileno(),),
            # its own output has no reader; each child gets its own pipe
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        theirs.close()
        self._sock = ours
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pids: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._next_id = 0
        try:
            ours.settimeout(120)
            message, _ = _recv(ours)  # imports done
            ours.settimeout(None)
            if not message.get('ready'):
                raise EOFError('fork server did not start')
        except BaseException:
            self.close()  # a server that did not come up leaves no socket and no process
            raise
        self._reader = threading.Thread(target=self._read, name='plait-forkserver', daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Release a dead server's socket (its forked processes keep running on their own)."""
        self._sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)

    def _read(self) -> None:
        try:
            while True:
                message, _ = _recv(self._sock)
                with self._cond:
                    if 'exited' in message:
                        self._exits[message['exited']] = message['code']
                    else:
                        self._pids[message['id']] = message['pid']
                    self._cond.notify_all()
        except (EOFError, OSError, ValueError):
            with self._cond:
                self._cond.notify_all()

    def spawn(self, module: str, args: list[str], env: dict[str, str], out_fd: int, ready_fd: int) -> int:
        """Fork a process running `module.main(args)`; its output goes to out_fd."""
        with self._cond:
            request_id = self._next_id
            self._next_id += 1
        request = {'id': request_id, 'module': module, 'args': args, 'env': env, 'cwd': os.getcwd(),
                   'sys_path': [p for p in sys.path]}
        with self._send_lock:
            _send(self._sock, request, (out_fd, ready_fd))
        with self._cond:
            if not self._cond.wait_for(lambda: request_id in self._pids or not self.alive(), timeout=30):
                raise OSError('the fork server did not answer')
            if request_id not in self._pids:
                raise OSError('the fork server exited')
            return self._pids.pop(request_id)

    def exit_code(self, pid: int) -> Optional[int]:
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
        if not self.alive() and not process_alive(pid):
            return -1  # the server is gone and cannot tell; the process is gone too
        return None

    def wait_for_exit(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)


def main() -> int:
    try:
        return serve(int(sys.argv[1]), int(sys.argv[2]))
    except (BrokenPipeError, ConnectionError):  # the parent went away
        return 0


if __name__ == '__main__':
    sys.exit(main())
