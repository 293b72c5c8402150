"""Bounded waits of the HTTP and WebSocket clients against servers that misbehave: one that
accepts and never answers, one that closes at once, one that sends headers and no body, ones
that drip a header or a body chunk every 0.2 s forever, one that speaks another protocol, and
one that completes the WebSocket upgrade and then goes silent.

Against each, `is_flow_ready`, `is_deployment_ready` and `dry_run` return False and `post` and
`status` raise a clear error (saying where), all within their 1 s timeout plus a slack: a call
still running after HANG_BOUND seconds fails the test instead of blocking it. The calls of one
server run at the same time, each in its own thread with its own Client.

Each test prints `MEASURE ...` lines (see RELIABILITY_HTTP.md); run with `-s` to see them.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plait import Client, Document
from plait.errors import InternalNetworkError, RequestTimeout

TIMEOUT = 1.0
HANG_BOUND = TIMEOUT + 9.0  # past this a call counts as hanging
PROTOCOLS = ('http', 'websocket')
PROBES = ('is_flow_ready', 'is_deployment_ready', 'dry_run')
WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

Behaviour = Callable[[socket.socket, threading.Event], None]


def read_head(conn: socket.socket) -> bytes:
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def silent(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def close_at_once(conn: socket.socket, stop: threading.Event) -> None:
    conn.close()


def headers_without_body(conn: socket.socket, stop: threading.Event) -> None:
    read_head(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"')
    stop.wait()


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    read_head(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\n')
    while not stop.wait(0.2):
        conn.sendall(b'X-Drip: 1\r\n')


def drip_body(conn: socket.socket, stop: threading.Event) -> None:
    read_head(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
    while not stop.wait(0.2):
        conn.sendall(b'1\r\n \r\n')


def other_protocol(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b'SSH-2.0-OpenSSH_9.0\r\n')
    stop.wait()


def upgrade_then_silent(conn: socket.socket, stop: threading.Event) -> None:
    """Completes a WebSocket handshake (subprotocol `bytes`) and never sends a frame; plain HTTP
    requests get no answer at all."""
    head = read_head(conn).decode('latin-1')
    keys = [line.split(':', 1)[1].strip() for line in head.split('\r\n') if line.lower().startswith('sec-websocket-key:')]
    if keys:
        accept = base64.b64encode(hashlib.sha1((keys[0] + WS_GUID).encode()).digest()).decode()
        conn.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                      f'Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: bytes\r\n\r\n').encode())
    stop.wait()


class MisbehavingServer:
    """A TCP listener on 127.0.0.1 running `behaviour` for each connection in its own thread."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.behaviour(conn, self.stop)
        except OSError:
            pass  # the client gave up and closed

    def close(self) -> None:
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.sock.close()
        for conn in self.conns:
            conn.close()
        for thread in [self._acceptor, *self.threads]:
            thread.join(timeout=5)


BEHAVIOURS = [silent, close_at_once, headers_without_body, drip_headers, drip_body, other_protocol,
              upgrade_then_silent]


@pytest.fixture(params=BEHAVIOURS, ids=[b.__name__ for b in BEHAVIOURS])
def server(request: pytest.FixtureRequest) -> Iterator[MisbehavingServer]:
    s = MisbehavingServer(request.param)
    yield s
    s.close()


def call(port: int, protocol: str, name: str) -> tuple[Any, float]:
    """Run one client call; (its result or the exception it raised, seconds it took)."""
    start = time.monotonic()
    with Client(port=port, protocol=protocol) as client:
        try:
            if name == 'post':
                result: Any = client.post('/', Document(text='x'), timeout=TIMEOUT)
            else:
                result = getattr(client, name)(timeout=TIMEOUT)
        except Exception as e:  # noqa: BLE001  (checked by the test)
            result = e
    return result, time.monotonic() - start


def all_at_once(port: int) -> dict[tuple[str, str], tuple[Any, float] | None]:
    """Every (protocol, call) in its own thread; None for a call still running at HANG_BOUND."""
    outcomes: dict[tuple[str, str], tuple[Any, float] | None] = {}
    threads = []
    for protocol in PROTOCOLS:
        for name in (*PROBES, 'post', 'status'):
            key = (protocol, name)
            outcomes[key] = None

            def run(key: tuple[str, str] = key) -> None:
                outcomes[key] = call(port, *key)

            thread = threading.Thread(target=run, daemon=True)
            threads.append(thread)
            thread.start()
    deadline = time.monotonic() + HANG_BOUND
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    return outcomes


def test_every_call_gives_up_within_its_timeout(server: MisbehavingServer) -> None:
    outcomes = all_at_once(server.port)
    hanging = [key for key, outcome in outcomes.items() if outcome is None]
    assert not hanging, f'still waiting after {HANG_BOUND} s: {hanging}'
    slowest = 0.0
    for (protocol, name), outcome in outcomes.items():
        assert outcome is not None
        result, took = outcome
        slowest = max(slowest, took)
        if name in PROBES:
            assert result is False, (protocol, name, result)
        else:
            assert isinstance(result, (RequestTimeout, InternalNetworkError)), (protocol, name, repr(result))
            message = str(result)
            assert str(server.port) in message, (protocol, name, message)  # says where
            assert not message.rstrip().endswith(':'), (protocol, name, message)  # and why
    errors = sorted({f'{n}={type(o[0]).__name__}' for (p, n), o in outcomes.items() if o and n not in PROBES})
    measure('bounded_http.misbehaving_server', server=server.behaviour.__name__, timeout_s=TIMEOUT,
            slowest_call_s=slowest, errors=','.join(errors))


def measure(name: str, **values: Any) -> None:
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)
