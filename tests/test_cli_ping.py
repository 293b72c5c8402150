"""`plait ping`, `plait dryrun` and `plait status`, run as real processes against real servers on
127.0.0.1: the executor worker, and small gRPC and HTTP servers started in this test process."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from flow_helpers import wait_until

from plait.cli.main import main
from plait.cli.target import parse_url
from plait.proto import jina_common_pb2, jina_common_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DOWN = "failed to connect to all addresses |Gateway: Communication error with deployment executor0"
HEAVY = ('docarray', 'fastapi', 'uvicorn', 'pydantic', 'rich', 'starlette', 'plait.proto.jina_data_pb2')


# ---------------------------------------------------------------------------------------- helpers

def free_port() -> int:
    """A port nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: default logging, no inherited CA setting."""
    unset = ('PLAIT_TLS_CA', 'PLAIT_LOG_LEVEL', 'GRPC_VERBOSITY')
    return {k: v for k, v in os.environ.items() if k not in unset}


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `python -m plait.cli.main ARGS` and capture its output (killed after `timeout` s)."""
    return subprocess.run([sys.executable, '-m', 'plait.cli.main', *args], check=False, capture_output=True,
                          text=True, timeout=timeout, env=cli_env())


@contextlib.contextmanager
def grpc_server(readiness: int | None = None, dry_run: tuple[int, str] | None = None,
                statuses: list[int] | None = None,
                tls: tuple[bytes, bytes] | None = None) -> Iterator[int]:
    """A gRPC server on 127.0.0.1: health ('' SERVING, 'readiness' if given, or '' answering
    `statuses` in turn), dry_run answering (code, description) if given, and _status."""
    pool = futures.ThreadPoolExecutor(max_workers=4)
    server = grpc.server(pool)
    servicer: health_pb2_grpc.HealthServicer
    if statuses is not None:
        servicer = FlippingHealth(statuses)
    else:
        servicer = health.HealthServicer()
        if readiness is not None:
            servicer.set('readiness', readiness)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if dry_run is not None:
        jina_common_pb2_grpc.add_JinaGatewayDryRunRPCServicer_to_server(DryRun(*dry_run), server)
    jina_common_pb2_grpc.add_JinaInfoRPCServicer_to_server(Info(), server)
    if tls:
        port = server.add_secure_port('127.0.0.1:0', grpc.ssl_server_credentials([(tls[1], tls[0])]))
    else:
        port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait(5)
        pool.shutdown(wait=True)


class FlippingHealth(health_pb2_grpc.HealthServicer):
    """Health whose overall status follows a script, one entry per Check (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self._statuses = list(statuses)
        self._lock = threading.Lock()

    def Check(self, request: Any, context: Any) -> Any:
        with self._lock:
            status = self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]
        return health_pb2.HealthCheckResponse(status=status)


class DryRun(jina_common_pb2_grpc.JinaGatewayDryRunRPCServicer):
    """Answers dry_run like a Jina gateway: always OK at the gRPC level, the StatusProto tells."""

    def __init__(self, code: int, description: str) -> None:
        self.status = jina_common_pb2.StatusProto(code=code, description=description)
        if code:
            self.status.exception.name = 'InternalNetworkError'

    def dry_run(self, request: Any, context: Any) -> Any:
        return self.status


class Info(jina_common_pb2_grpc.JinaInfoRPCServicer):
    def _status(self, request: Any, context: Any) -> Any:
        return jina_common_pb2.JinaInfoProto(jina={'session-id': 'grpc-test-session', 'python': '3'},
                                             envs={'PLAIT_LOG_LEVEL': '(unset)'})


@contextlib.contextmanager
def http_server(routes: dict[str, tuple[int, Any]], tls: tuple[bytes, bytes] | None = None) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 answering GET path -> (status, JSON body); 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, {'detail': 'Not Found'}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as d:
            Path(d, 'cert.pem').write_bytes(tls[0])
            Path(d, 'key.pem').write_bytes(tls[1])
            context.load_cert_chain(Path(d, 'cert.pem'), Path(d, 'key.pem'))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port whose connections are accepted (by the kernel) and never answered."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(16)
        yield s.getsockname()[1]


def retry_lines(stderr: str) -> list[str]:
    return re.findall(r'not responding, retry \((\d+)/(\d+)\) in 1s', stderr)


# --------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope='module')
def executor_port() -> Iterator[int]:
    """A real executor worker process, SERVING."""
    port = free_port()
    with tempfile.TemporaryFile('w+') as log:
        proc = subprocess.Popen([sys.executable, '-m', 'plait.serve.worker', '--host', '127.0.0.1',
                                 '--port', str(port)], stdout=log, stderr=subprocess.STDOUT, env=cli_env())
        try:
            with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
                check = health_pb2_grpc.HealthStub(channel).Check

                def serving() -> bool:
                    try:
                        return check(health_pb2.HealthCheckRequest(), timeout=1).status == SERVING
                    except grpc.RpcError:
                        return False

                assert wait_until(serving, 60, 0.1, abort=lambda: proc.poll() is not None
                                  and f'worker exited: {log.seek(0) or log.read()}') is not None, \
                    'worker not SERVING within 60 s'
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope='module')
def tls_files() -> Iterator[tuple[bytes, bytes, str]]:
    """A self-signed certificate for localhost/127.0.0.1: (cert PEM, key PEM, path of the cert file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, 'ca.pem')
        path.write_bytes(cert_pem)
        yield cert_pem, key_pem, str(path)


# -------------------------------------------------------------------------------------- unit bits

@pytest.mark.parametrize('url, expected', [
    ('localhost:12345', ('localhost', 12345, False, False)),
    ('grpc://h:1', ('h', 1, False, False)),
    ('grpcs://h:443', ('h', 443, False, True)),
    ('http://h:8080', ('h', 8080, True, False)),
    ('https://h', ('h', 443, True, True)),
    ('ws://h:9', ('h', 9, True, False)),
    ('wss://h:9', ('h', 9, True, True)),
    ('grpc://[::1]:5', ('::1', 5, False, False)),
])
def test_parse_url(url: str, expected: tuple[Any, ...]) -> None:
    target = parse_url(url)
    assert (target.host, target.port, target.http, target.tls) == expected


@pytest.mark.parametrize('url', ['ftp://h:1', 'grpc://h', 'grpc://:5', 'http://h:notaport'])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_bad_arguments_exit_2() -> None:
    assert run_cli('ping', 'executor', 'ftp://h:1').returncode == 2
    too_many = run_cli('ping', 'executor', 'h:1', '--attempts', '2', '--min-successful-attempts', '3')
    assert too_many.returncode == 2 and 'cannot exceed' in too_many.stderr
    assert run_cli('ping', 'executor', 'h:1', '--timeout', '0').returncode == 2
    assert run_cli('ping', 'nothing', 'h:1').returncode == 2


def test_help_version_and_delegation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['--version']) == 0
    assert capsys.readouterr().out.strip() == 'plait 0.1.0'
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    for command in ('ping', 'dryrun', 'status', 'executor', 'gateway', 'flow', 'deployment', 'export'):
        assert f'plait {command}' in out
    executor_help = run_cli('executor', '--help')
    assert executor_help.returncode == 0 and 'usage: plait executor' in executor_help.stdout


# ------------------------------------------------------------------------------------- ping, gRPC

def test_ping_executor_live(executor_port: int) -> None:
    url = f'grpc://127.0.0.1:{executor_port}'
    result = run_cli('ping', 'executor', url)
    assert result.returncode == 0, result.stderr
    assert f'ping {url} at 0 round...' in result.stderr
    assert re.search(rf'ping {re.escape(url)} at 0 round takes 0 seconds \(\d\.\d\ds\)', result.stderr)
    assert re.search(r'INFO +PLAIT@\d+ avg\. latency: \d+ ms', result.stderr)
    assert 'message lost' not in result.stderr


def test_console_script(executor_port: int) -> None:
    script = Path(sys.executable).with_name('plait')
    if not script.exists():
        pytest.skip('the plait console script is not installed in this environment')
    result = subprocess.run([str(script), 'ping', 'deployment', f'127.0.0.1:{executor_port}'],
                            check=False, capture_output=True, text=True, timeout=30, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert 'avg. latency' in result.stderr


def test_ping_closed_port_three_attempts() -> None:
    url = f'grpc://127.0.0.1:{free_port()}'
    start = time.monotonic()
    result = run_cli('ping', 'executor', url, '--attempts', '3')
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert retry_lines(result.stderr) == [('1', '3'), ('2', '3'), ('3', '3')]
    assert result.stderr.count('ERROR') == 3 and 'UNAVAILABLE' in result.stderr
    assert 'message lost 100% (3/3)' in result.stderr
    assert 'avg. latency' not in result.stderr
    assert 2 <= elapsed < 15  # two 1 s pauses, none after the last round


def test_min_successful_attempts() -> None:
    script = [SERVING, NOT_SERVING, SERVING]
    with grpc_server(statuses=script) as port:
        result = run_cli('ping', 'gateway', f'127.0.0.1:{port}', '--attempts', '3',
                         '--min-successful-attempts', '2')
    assert result.returncode == 0, result.stderr
    assert 'message lost 33% (1/3)' in result.stderr and 'avg. latency' in result.stderr
    assert "health is NOT_SERVING" in result.stderr
    with grpc_server(statuses=script) as port:
        result = run_cli('ping', 'gateway', f'127.0.0.1:{port}', '--attempts', '3',
                         '--min-successful-attempts', '3')
    assert result.returncode == 1


def test_flow_readiness_serving_and_not_serving() -> None:
    with grpc_server(readiness=SERVING, dry_run=(1, DOWN)) as port:
        result = run_cli('ping', 'flow', f'grpc://127.0.0.1:{port}')
    assert result.returncode == 0, result.stderr  # readiness wins: no dry run sent
    with grpc_server(readiness=NOT_SERVING, dry_run=(0, '')) as port:
        result = run_cli('ping', 'flow', f'grpc://127.0.0.1:{port}')
    assert result.returncode == 1
    assert "health of service 'readiness' is NOT_SERVING" in result.stderr
    assert 'message lost 100% (1/1)' in result.stderr


def test_flow_falls_back_to_dry_run() -> None:
    with grpc_server(dry_run=(0, '')) as port:
        assert run_cli('ping', 'flow', f'127.0.0.1:{port}').returncode == 0
    with grpc_server(dry_run=(1, DOWN)) as port:
        result = run_cli('ping', 'flow', f'127.0.0.1:{port}')
    assert result.returncode == 1 and f'dry run failed: {DOWN}' in result.stderr
    with grpc_server() as port:  # neither readiness nor dry_run
        result = run_cli('ping', 'flow', f'127.0.0.1:{port}')
    assert result.returncode == 1 and 'is it a Flow gateway?' in result.stderr


def test_deployment_falls_back_to_health(executor_port: int) -> None:
    assert run_cli('ping', 'deployment', f'127.0.0.1:{executor_port}').returncode == 0
    assert run_cli('ping', 'deployment', f'127.0.0.1:{executor_port}', '--timeout', '-1').returncode == 0
    with grpc_server(readiness=NOT_SERVING) as port:
        assert run_cli('ping', 'deployment', f'127.0.0.1:{port}').returncode == 1


@pytest.mark.parametrize('scheme', ['grpc', 'http'])
def test_silent_listener_is_bounded_by_timeout(scheme: str) -> None:
    with silent_listener() as port:
        start = time.monotonic()
        result = run_cli('ping', 'flow', f'{scheme}://127.0.0.1:{port}', '--timeout', '1000')
        elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert 'no answer within 1000 ms' in result.stderr
    assert elapsed < 6


# ------------------------------------------------------------------------------------- ping, HTTP

def test_http_gateway_and_flow() -> None:
    routes = {'/': (200, {}), '/readyz': (200, {'ready': True})}
    with http_server(routes) as port:
        for kind in ('gateway', 'flow', 'deployment'):
            result = run_cli('ping', kind, f'http://127.0.0.1:{port}')
            assert result.returncode == 0, result.stderr
        assert run_cli('ping', 'gateway', f'ws://127.0.0.1:{port}').returncode == 0
    with http_server({'/readyz': (503, {'not_ready': ['executor0 rep 0 at 127.0.0.1:1: down']})}) as port:
        result = run_cli('ping', 'flow', f'http://127.0.0.1:{port}')
        assert result.returncode == 1 and 'HTTP 503' in result.stderr and 'executor0' in result.stderr
        gateway = run_cli('ping', 'gateway', f'http://127.0.0.1:{port}')
        assert gateway.returncode == 1 and 'GET / answered HTTP 404' in gateway.stderr


def test_http_flow_falls_back_to_dry_run() -> None:
    ok = {'code': 0, 'description': '', 'exception': None}
    with http_server({'/': (200, {}), '/dry_run': (200, ok)}) as port:
        assert run_cli('ping', 'flow', f'ws://127.0.0.1:{port}').returncode == 0
    failed = {'code': 1, 'description': DOWN, 'exception': {'name': 'InternalNetworkError'}}
    with http_server({'/dry_run': (200, failed)}) as port:
        result = run_cli('ping', 'flow', f'http://127.0.0.1:{port}')
    assert result.returncode == 1 and DOWN in result.stderr


def test_tls(tls_files: tuple[bytes, bytes, str]) -> None:
    cert, key, ca = tls_files
    with grpc_server(readiness=SERVING, tls=(cert, key)) as port:
        assert run_cli('ping', 'flow', f'grpcs://127.0.0.1:{port}', '--tls-ca', ca).returncode == 0
        untrusted = run_cli('ping', 'flow', f'grpcs://127.0.0.1:{port}', '--timeout', '2000')
        assert untrusted.returncode == 1 and 'CERTIFICATE_VERIFY_FAILED' in untrusted.stderr
        assert 'ssl_transport_security' not in untrusted.stderr  # no gRPC C-core log lines
    with http_server({'/': (200, {})}, tls=(cert, key)) as port:
        assert run_cli('ping', 'gateway', f'https://127.0.0.1:{port}', '--tls-ca', ca).returncode == 0
        untrusted = run_cli('ping', 'gateway', f'wss://127.0.0.1:{port}')
        assert untrusted.returncode == 1 and 'CERTIFICATE_VERIFY_FAILED' in untrusted.stderr


# ------------------------------------------------------------------------------- dryrun and status

def test_dryrun_success_and_failure() -> None:
    with grpc_server(dry_run=(0, '')) as port:
        result = run_cli('dryrun', f'grpc://127.0.0.1:{port}')
    assert result.returncode == 0 and result.stdout.strip() == 'dry run successful'
    with grpc_server(dry_run=(1, DOWN)) as port:
        result = run_cli('dryrun', f'127.0.0.1:{port}')
    assert result.returncode == 1 and DOWN in result.stderr and 'successful' not in result.stdout
    with http_server({'/dry_run': (200, {'code': 0, 'description': '', 'exception': None})}) as port:
        result = run_cli('dryrun', f'http://127.0.0.1:{port}')
    assert result.returncode == 0 and result.stdout.strip() == 'dry run successful'
    with http_server({'/dry_run': (200, {'code': 1, 'description': DOWN, 'exception': {}})}) as port:
        result = run_cli('dryrun', f'http://127.0.0.1:{port}')
    assert result.returncode == 1 and DOWN in result.stderr
    closed = run_cli('dryrun', f'127.0.0.1:{free_port()}')
    assert closed.returncode == 1 and 'UNAVAILABLE' in closed.stderr


def test_status(executor_port: int) -> None:
    result = run_cli('status', f'grpc://127.0.0.1:{executor_port}')
    assert result.returncode == 0, result.stderr
    assert 'session-id' in result.stdout and 'PLAIT_LOG_LEVEL' in result.stdout
    info = {'jina': {'session-id': 'http-test-session'}, 'envs': {'PLAIT_LOG_LEVEL': 'DEBUG'}}
    with http_server({'/status': (200, info)}) as port:
        result = run_cli('status', f'http://127.0.0.1:{port}')
    assert result.returncode == 0 and 'http-test-session' in result.stdout and 'DEBUG' in result.stdout
    assert run_cli('status', f'127.0.0.1:{free_port()}').returncode == 1


# ------------------------------------------------------------------------------------ light imports

@pytest.mark.parametrize('args', [
    ('ping', 'executor', 'grpc://127.0.0.1:{port}'),
    ('ping', 'flow', 'http://127.0.0.1:{port}'),
    ('dryrun', '127.0.0.1:{port}'),
])
def test_probe_path_imports_stay_light(args: tuple[str, ...]) -> None:
    port = free_port()
    argv = [a.format(port=port) for a in args]
    result = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'plait.cli.main', *argv],
                            check=False, capture_output=True, text=True, timeout=30, env=cli_env())
    assert result.returncode == 1  # nothing listens
    imported = {line.split('|')[-1].strip() for line in result.stderr.splitlines()
                if line.startswith('import time:')}
    assert 'plait.cli.main' in imported or 'plait.cli.ping' in imported
    heavy = sorted(m for m in imported for h in HEAVY if m == h or m.startswith(h + '.'))
    assert not heavy, f'probe path imported {heavy}'
