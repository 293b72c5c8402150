"""TLS on every protocol at once: one Flow serving grpc, http and websocket with
`ssl_certfile`/`ssl_keyfile` (a self-signed certificate for 127.0.0.1 and localhost made here),
clients with `tls=True` trusting it, curl over https, and the failures: an untrusted
certificate, plain text to a TLS port, and missing TLS files."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from test_http_gateway import curl

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.errors import RuntimeFailedToStart


class FooExecutor(Executor):
    @requests
    def foo(self, docs: DocumentArray, **kwargs) -> None:
        docs.append(Document(text='foo was called'))


def make_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate (its own CA) for localhost and 127.0.0.1: (certfile, keyfile)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / 'cert.pem', directory / 'key.pem'
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


@pytest.fixture(scope='module')
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_certificate(tmp_path_factory.mktemp('tls'))


def test_tls_on_grpc_http_and_websocket_at_once(certificate: tuple[str, str]) -> None:
    certfile, keyfile = certificate
    ca = Path(certfile).read_bytes()
    f = Flow(protocol=['grpc', 'http', 'websocket'], ssl_certfile=certfile, ssl_keyfile=keyfile,
             quiet=True).add(uses=FooExecutor)
    with f:
        ports = dict(zip(f.protocols, f.ports))
        trusted = {'grpc': {'root_certificates': ca}, 'http': {'verify': certfile}, 'websocket': {'verify': certfile}}
        for protocol, port in ports.items():
            for host in ('127.0.0.1', 'localhost'):
                with Client(host=host, port=port, protocol=protocol, tls=True, **trusted[protocol]) as client:
                    assert client.post(on='/').texts == ['foo was called'], (protocol, host)
                    assert client.is_flow_ready() is True and client.dry_run() is True
            # a client that does not trust the certificate gets False, not an exception
            with Client(port=port, protocol=protocol, tls=True) as client:
                assert client.is_flow_ready(timeout=2) is False
            # and one that does not speak TLS fails too
            with Client(port=port, protocol=protocol) as client:
                assert client.is_flow_ready(timeout=2) is False

        for protocol in ('http', 'websocket'):
            base = f'https://localhost:{ports[protocol]}'
            assert curl(base, '--cacert', certfile) == (200, '{}')
            assert curl(f'{base}/dry_run', '--cacert', certfile)[1] == '{"code":0,"description":"","exception":null}'
        assert curl(f'https://localhost:{ports["http"]}/post', '--cacert', certfile, '-H',
                    'Content-Type: application/json', '-d', '{"data": [{"text": "hi"}]}')[0] == 200
        # the scheme in a URL says it too
        with Client(host=f'https://localhost:{ports["http"]}', verify=certfile) as client:
            assert client.post(on='/', inputs=[Document(text='x')]).texts == ['x', 'foo was called']
        with Client(host=f'wss://localhost:{ports["websocket"]}', verify=certfile) as client:
            assert client.post(on='/', inputs=[Document(text='y')]).texts == ['y', 'foo was called']


@pytest.mark.parametrize('protocol', ['http', 'websocket'])
def test_missing_tls_files_fail_the_start_clearly(protocol: str, tmp_path: Path) -> None:
    missing = str(tmp_path / 'nowhere.pem')
    f = Flow(protocol=protocol, ssl_certfile=missing, ssl_keyfile=missing, quiet=True, timeout_ready=30000)
    with pytest.raises(RuntimeFailedToStart) as failure, f:
        pass
    assert 'nowhere.pem' in str(failure.value)
