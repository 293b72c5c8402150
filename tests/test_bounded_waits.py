"""Bounded waits: against a TCP listener that accepts connections and never answers, every
readiness probe returns False within its timeout and `post(timeout=...)` raises a clear
error; nothing waits forever. Each call runs in a thread joined with a bound, so a hang
fails the test instead of blocking it.

Each test prints its measurements (`MEASURE ...` lines, see RELIABILITY.md); run with `-s`."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plait import Client, Document
from plait.errors import InternalNetworkError, RequestTimeout

PROTOCOLS = ['grpc', 'http', 'websocket']
SLACK = 10.0  # bound on top of a call's own timeout before it counts as hanging


class SilentListener:
    """Accepts every TCP connection and never sends or reads a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if readable:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    listener = SilentListener()
    yield listener
    listener.close()


def bounded(fn: Callable[[], Any], bound: float) -> tuple[Any, float]:
    """Run `fn` in a thread; its result (or the exception it raised) and how long it took.
    Fails the test if it has not returned after `bound` seconds."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box['result'] = fn()
        except BaseException as e:  # noqa: BLE001  (handed to the test)
            box['result'] = e

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=bound)
    took = time.monotonic() - start
    assert not thread.is_alive(), f'the call did not return within {bound:.0f}s'
    return box['result'], took


def measure(name: str, **values: Any) -> None:
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)


CASES = [(protocol, probe, 1.0) for protocol in PROTOCOLS for probe in ('is_flow_ready', 'is_deployment_ready',
                                                                         'dry_run')]
CASES += [(protocol, 'is_flow_ready', None) for protocol in PROTOCOLS]  # the default timeout (3 s)


@pytest.mark.parametrize('protocol,probe,timeout', CASES)
def test_probes_return_false_against_a_silent_listener(silent: SilentListener, protocol: str, probe: str,
                                                       timeout: float | None) -> None:
    with Client(port=silent.port, protocol=protocol) as client:
        call = getattr(client, probe)
        result, took = bounded(lambda: call() if timeout is None else call(timeout), (timeout or 3.0) + SLACK)
    assert result is False
    measure('bounded.probe', protocol=protocol, probe=probe, timeout=timeout or 'default(3s)', returned_after_s=took)


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_post_with_a_timeout_raises_a_clear_error(silent: SilentListener, protocol: str) -> None:
    with Client(port=silent.port, protocol=protocol) as client:
        error, took = bounded(lambda: client.post('/', Document(), timeout=1), 1 + SLACK)
    assert isinstance(error, (RequestTimeout, InternalNetworkError)), error
    assert str(silent.port) in str(error)  # says where
    assert not str(error).rstrip().endswith(':')  # and why
    measure('bounded.post_timeout_1s', protocol=protocol, raised=type(error).__name__, after_s=took,
            message=repr(str(error)[:90]))


def test_grpc_post_without_a_timeout_still_fails_when_nobody_answers(silent: SilentListener) -> None:
    """No deadline given: gRPC's connection handshake timeout bounds the wait."""
    with Client(port=silent.port) as client:
        error, took = bounded(lambda: client.post('/', Document()), 60)
    assert isinstance(error, InternalNetworkError), error
    measure('bounded.grpc_post_no_timeout', raised=type(error).__name__, after_s=took)


def test_status_has_a_default_timeout(silent: SilentListener) -> None:
    with Client(port=silent.port) as client:
        error, took = bounded(client.status, 3 + SLACK)
    assert isinstance(error, (RequestTimeout, InternalNetworkError)), error
    measure('bounded.status', raised=type(error).__name__, after_s=took)


@pytest.mark.parametrize('kind', ['flow', 'executor'])
def test_ping_cli_gives_up_on_a_silent_listener(silent: SilentListener, kind: str) -> None:
    plait = Path(sys.executable).parent / 'plait'
    start = time.monotonic()
    done = subprocess.run([str(plait), 'ping', kind, f'grpc://127.0.0.1:{silent.port}', '--timeout', '1000'],
                          capture_output=True, text=True, timeout=60, check=False)
    took = time.monotonic() - start
    assert done.returncode == 1, done.stdout + done.stderr
    measure('bounded.ping_cli', kind=kind, exit_code=done.returncode, after_s=took)
