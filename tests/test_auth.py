"""Authentication (plait/auth.py) end to end: one Flow serving grpc, http and websocket with two
tokens (a rotation), asked without a token, with a wrong one and with each right one by the
plait Client (sync and async), grpcurl, curl and websocat; probes stay open; a raw grpcio call
to an executor port is refused (health open) and executors listen on loopback; the `plait`
probes send tokens; nothing prints a token, even at DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flow_helpers import grpcurl, run_script, wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc
from test_http_gateway import curl
from test_websocket_gateway import WEBSOCAT

from plait import Client, Deployment, Flow
from plait import auth
from plait.errors import BadConfig, UnknownOption, Unauthenticated
from plait.proto import jina_data_pb2

OLD, NEW = 'old-token-4f1c9a', 'new-token-93be27'
WRONG = 'wrong-token-000000'
SECRET = 'executor-secret-7d2e55'


@pytest.fixture(scope='module')
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    mp = pytest.MonkeyPatch()
    mp.setenv(auth.EXECUTOR_SECRET_ENV, SECRET)  # a known internal secret, to check it never leaks
    try:
        f = Flow(protocol=['grpc', 'http', 'websocket'], auth_token=[OLD, NEW], quiet=True).add(replicas=2)
        with f:
            yield f
    finally:
        mp.undo()


def _address(flow: Flow, protocol: str) -> str:
    return f'127.0.0.1:{flow.ports[flow.protocols.index(protocol)]}'


# -- tokens: where they come from, what is refused --------------------------------------------
def test_tokens_come_from_the_option_then_the_file_then_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / 'token'
    token_file.write_text(f'{OLD}\n\n{NEW}\n')
    env = {auth.TOKEN_ENV: 'from-env', auth.TOKEN_FILE_ENV: str(token_file)}
    assert auth.load_tokens('opt', str(token_file), env) == ('opt',)
    assert auth.load_tokens(['a', 'b', 'a'], None, env) == ('a', 'b')
    assert auth.load_tokens(None, str(token_file), env) == (OLD, NEW)
    assert auth.load_tokens(None, None, env) == ('from-env',)
    assert auth.load_tokens(None, None, {auth.TOKEN_ENV: 'x,y'}) == ('x', 'y')
    assert auth.load_tokens(None, None, {auth.TOKEN_FILE_ENV: str(token_file)}) == (OLD, NEW)
    assert auth.load_tokens(None, None, {}) == ()


def test_unusable_tokens_are_refused_without_showing_them(tmp_path: Path) -> None:
    for bad in ('', ['  '], 'has space', 'quote"d'):
        with pytest.raises(auth.AuthConfigError) as e:
            auth.load_tokens(bad, None, {})
        assert 'quote"d' not in str(e.value)
    with pytest.raises(auth.AuthConfigError, match='cannot read'):
        auth.load_tokens(None, str(tmp_path / 'missing'), {})
    (tmp_path / 'empty').write_text('\n')
    with pytest.raises(auth.AuthConfigError, match='holds no token'):
        auth.load_tokens(None, str(tmp_path / 'empty'), {})
    with pytest.raises(BadConfig, match='auth_token'):
        Flow(auth_token='has space')
    with pytest.raises(BadConfig, match='auth_token_file'):
        Flow(auth_token_file=str(tmp_path / 'missing'))


def test_token_check() -> None:
    check = auth.TokenCheck([OLD, NEW])
    assert check.accepts(f'Bearer {OLD}') and check.accepts(f'bearer {NEW}'.encode())
    for value in (None, '', OLD, f'Basic {OLD}', f'Bearer {WRONG}', f'Bearer {OLD}x', 'Bearer '):
        assert not check.accepts(value), value
    assert OLD not in repr(check)


def test_auth_token_belongs_to_the_flow_not_to_add() -> None:
    with pytest.raises(UnknownOption, match="auth_token is an option of the Flow's gateway"):
        Flow().add(auth_token='x')


def test_saved_yaml_names_the_variable_not_the_token(tmp_path: Path) -> None:
    path = tmp_path / 'flow.yml'
    Flow(auth_token=OLD).add().save_config(str(path))
    text = path.read_text()
    assert OLD not in text and '${{ ENV.PLAIT_AUTH_TOKEN }}' in text
    with pytest.raises(BadConfig, match='auth_token: empty'):  # the variable unset: refused, not open
        Flow.load_config(str(path))


# -- the plait Client, every protocol, sync and async -----------------------------------------
@pytest.mark.parametrize('protocol', ['grpc', 'http', 'websocket'])
def test_client_with_each_token_without_and_with_a_wrong_one(flow: Flow, protocol: str) -> None:
    port = flow.ports[flow.protocols.index(protocol)]
    for token in (OLD, NEW):
        with Client(port=port, protocol=protocol, auth_token=token) as client:
            assert client.post('/', inputs=None, return_responses=True)[0].status.code == 0
            assert client.dry_run() and client.status()['jina']
    for token in (None, WRONG):
        with Client(port=port, protocol=protocol, auth_token=token) as client:
            with pytest.raises(Unauthenticated, match='a valid token is required') as e:
                client.post('/')
            assert WRONG not in str(e.value)
            assert client.is_flow_ready()  # readiness is a probe: open
            assert not client.dry_run()
            with pytest.raises(Unauthenticated):
                client.status()


@pytest.mark.parametrize('protocol', ['grpc', 'http', 'websocket'])
def test_async_client(flow: Flow, protocol: str) -> None:
    port = flow.ports[flow.protocols.index(protocol)]

    async def run() -> None:
        async with Client(port=port, protocol=protocol, auth_token=NEW, asyncio=True) as client:
            answers = [docs async for docs in client.post('/', inputs=None, request_size=1)]
            assert len(answers) == 1
        async with Client(port=port, protocol=protocol, auth_token=WRONG, asyncio=True) as client:
            with pytest.raises(Unauthenticated):
                async for _ in client.post('/', inputs=None):
                    pass

    asyncio.run(run())


def test_client_reads_the_token_from_the_environment(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, NEW)
    with Client(port=flow.ports[0]) as client:
        assert client.dry_run()


def test_the_flow_posts_with_its_own_token(flow: Flow) -> None:
    assert flow.post('/', inputs=None) is not None
    assert flow.dry_run()


def test_tokens_and_the_secret_are_not_on_any_command_line(flow: Flow) -> None:
    labels = ['gateway', 'executor0/rep-0', 'executor0/rep-1']
    for label in labels:
        with open(f'/proc/{flow.process_of(label).pid}/cmdline', 'rb') as f:
            cmdline = f.read().decode()
        assert cmdline and all(v not in cmdline for v in (OLD, NEW, SECRET)), label


# -- grpcurl ----------------------------------------------------------------------------------
def _grpcurl(address: str, method: str, *headers: str, data: dict | None = None) -> subprocess.CompletedProcess:
    return grpcurl(address, method, data, headers=headers)


def test_grpcurl(flow: Flow) -> None:
    address = _address(flow, 'grpc')
    for method in ('jina.JinaGatewayDryRunRPC/dry_run', 'jina.JinaInfoRPC/_status'):
        for headers in ((), (f'authorization: Bearer {WRONG}',)):
            done = _grpcurl(address, method, *headers)
            assert done.returncode != 0 and 'Unauthenticated' in done.stderr, done.stderr
            assert 'a valid token is required' in done.stderr
        done = _grpcurl(address, method, f'authorization: Bearer {OLD}')
        assert done.returncode == 0, done.stderr
    done = _grpcurl(address, 'jina.JinaSingleDataRequestRPC/process_single_data', f'authorization: Bearer {NEW}',
                    data={'header': {'exec_endpoint': '/'}, 'data': {'docs': {}}})
    assert done.returncode == 0, done.stderr
    # probes answer without a token
    assert json.loads(_grpcurl(address, 'grpc.health.v1.Health/Check').stdout)['status'] == 'SERVING'
    done = _grpcurl(address, 'grpc.health.v1.Health/Check', data={'service': 'readiness'})
    assert json.loads(done.stdout)['status'] == 'SERVING'


# -- curl -------------------------------------------------------------------------------------
def test_curl(flow: Flow) -> None:
    base = f'http://{_address(flow, "http")}'
    body = ['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', '{"data": [{"text": "a"}]}']
    for headers in ([], ['-H', f'Authorization: Bearer {WRONG}'], ['-H', f'Authorization: Basic {OLD}']):
        code, text = curl(f'{base}/post', *body, *headers, '-D', '-')
        assert code == 401, text
        assert 'www-authenticate: Bearer' in text.lower().replace('bearer', 'Bearer')
        assert 'a valid token is required' in text
    code, text = curl(f'{base}/post', *body, '-H', f'Authorization: Bearer {OLD}')
    assert code == 200 and json.loads(text)['data'][0]['text'] == 'a'
    for path in ('/', '/livez', '/readyz'):
        assert curl(base + path)[0] == 200, path
    for path in ('/dry_run', '/status', '/docs', '/openapi.json', '/docs/static/swagger-ui.css'):
        assert curl(base + path)[0] == 401, path
        assert curl(base + path, '-H', f'Authorization: Bearer {NEW}')[0] == 200, path
    assert curl(base + '/metrics')[0] == 401  # served with monitoring=True (below); refused before routing


def test_public_docs_open_only_the_docs_and_metrics_need_the_token() -> None:
    with Flow(protocol='http', auth_token=OLD, public_docs=True, monitoring=True, quiet=True).add() as f:
        base = f'http://127.0.0.1:{f.port}'
        for path in ('/docs', '/openapi.json', '/docs/static/swagger-ui.css'):
            assert curl(base + path)[0] == 200, path
        for path in ('/status', '/metrics'):
            assert curl(base + path)[0] == 401, path
        code, text = curl(base + '/metrics', '-H', f'Authorization: Bearer {OLD}')
        assert code == 200 and '# TYPE' in text


def test_graphql_needs_the_token() -> None:
    with Flow(protocol='http', auth_token=OLD, expose_graphql_endpoint=True, quiet=True).add() as f:
        query = ['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', '{"query": "{ __typename }"}']
        url = f'http://127.0.0.1:{f.port}/graphql'
        assert curl(url, *query)[0] == 401
        assert curl(url, *query, '-H', f'Authorization: Bearer {OLD}')[0] == 200


# -- websocat ---------------------------------------------------------------------------------
def _websocat(url: str, *headers: str) -> subprocess.CompletedProcess:
    args = [WEBSOCAT, '-n', *(f'-H={header}' for header in headers)]
    line = json.dumps({'header': {'request_id': 'r1'}, 'data': [{'text': 'hi'}]})
    return subprocess.run([*args, url], input=line + '\n{}\n', capture_output=True, text=True, timeout=20,
                          check=False)


def test_websocat(flow: Flow) -> None:
    url = f'ws://{_address(flow, "websocket")}/'
    for headers in ((), (f'Authorization: Bearer {WRONG}',)):
        done = _websocat(url, *headers)
        assert done.returncode != 0 and '401' in done.stderr, done.stderr
    done = _websocat(url, f'Authorization: Bearer {NEW}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])['data'][0]['text'] == 'hi'


# -- executors: only their gateway may call them ----------------------------------------------
def _listening_host(port: int) -> set[str]:
    """The local addresses a TCP socket listens on for `port` (from /proc/net/tcp)."""
    hosts = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.rsplit(':', 1)
                if state == '0A' and int(port_hex, 16) == port:
                    hosts.add(address)
    return hosts


def test_a_raw_call_to_an_executor_is_refused_and_health_stays_open(flow: Flow) -> None:
    request = jina_data_pb2.DataRequestProto()
    request.header.exec_endpoint = '/'
    for port in [p for ports in flow.deployments['executor0'].worker_ports for p in ports]:
        hosts = _listening_host(port)  # 127.0.0.1 only (grpc may bind it IPv4-mapped)
        assert hosts and hosts <= {'0100007F', '0000000000000000FFFF00000100007F'}, hosts
        with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
            call = channel.unary_unary('/jina.JinaSingleDataRequestRPC/process_single_data',
                                       request_serializer=jina_data_pb2.DataRequestProto.SerializeToString,
                                       response_deserializer=jina_data_pb2.DataRequestProto.FromString)
            for metadata in (None, (('authorization', f'Bearer {OLD}'),)):  # a user token is not the secret
                with pytest.raises(grpc.RpcError) as e:
                    call(request, timeout=10, metadata=metadata)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert call(request, timeout=10, metadata=(('authorization', f'Bearer {SECRET}'),)).header.status.code == 0
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        done = _grpcurl(f'127.0.0.1:{port}', 'jina.JinaDiscoverEndpointsRPC/endpoint_discovery')
        assert 'Unauthenticated' in done.stderr


def test_executors_of_a_flow_listen_on_loopback_unless_add_says_otherwise() -> None:
    f = Flow().add(name='a', host='0.0.0.0').add(name='b')
    assert f.deployments['a'].worker_config(0, 0, 1).host == '0.0.0.0'
    assert f.deployments['b'].worker_config(0, 0, 1).host == '127.0.0.1'
    assert Deployment(replicas=2).worker_config(0, 0, 1).host == '127.0.0.1'  # behind its own gateway
    assert Deployment().worker_config(0, 0, 1).host == '0.0.0.0'  # the replica is what callers reach


@pytest.mark.parametrize('replicas', [1, 2])
def test_deployment_with_a_token(replicas: int) -> None:
    with Deployment(auth_token=OLD, replicas=replicas, quiet=True) as dep:
        assert dep.is_deployment_ready()
        assert dep.post('/', inputs=None) is not None
        with Client(port=dep.port) as client:
            with pytest.raises(Unauthenticated):
                client.post('/')
        with Client(port=dep.port, auth_token=OLD) as client:
            assert client.post('/', inputs=None, return_responses=True)[0].status.code == 0


# -- the plait command ------------------------------------------------------------------------
def _plait(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith('PLAIT_')}
    environment.update(env or {})
    return subprocess.run([sys.executable, '-m', 'plait.cli.main', *args], capture_output=True, text=True,
                          timeout=30, env=environment, check=False)


@pytest.mark.parametrize('protocol', ['grpc', 'http'])
def test_plait_probes_send_the_token(flow: Flow, protocol: str, tmp_path: Path) -> None:
    url = f'{protocol}://{_address(flow, protocol)}'
    assert _plait('ping', 'flow', url).returncode == 0  # readiness is open
    refused = _plait('dryrun', url)
    assert refused.returncode == 1
    assert _plait('dryrun', url, '--auth-token', WRONG).returncode == 1
    assert _plait('dryrun', url, '--auth-token', OLD).returncode == 0
    assert _plait('dryrun', url, env={auth.TOKEN_ENV: NEW}).returncode == 0
    (tmp_path / 'token').write_text(NEW + '\n')
    assert _plait('status', url, '--auth-token-file', str(tmp_path / 'token')).returncode == 0
    assert _plait('status', url, env={auth.TOKEN_FILE_ENV: str(tmp_path / 'token')}).returncode == 0
    assert _plait('status', url).returncode == 1


# -- nothing leaks ----------------------------------------------------------------------------
def test_no_token_or_secret_in_logs_status_or_errors_even_at_debug() -> None:
    done = run_script(f'''
        from plait import Client, Flow
        from plait.errors import Unauthenticated
        f = Flow(protocol=['grpc', 'http', 'websocket'], auth_token={OLD!r}).add(replicas=2)
        with f:
            for protocol, port in zip(f.protocols, f.ports):
                with Client(port=port, protocol=protocol, auth_token={OLD!r}) as c:
                    c.post('/', inputs=None)
                    print('status', c.status())
                for token in (None, {WRONG!r}):
                    with Client(port=port, protocol=protocol, auth_token=token) as c:
                        try:
                            c.post('/')
                        except Unauthenticated as e:
                            print('refused', repr(e))
        print('done')
    ''', PLAIT_LOG_LEVEL='DEBUG', PLAIT_EXECUTOR_SECRET=SECRET)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and 'done' in done.stdout, output[-3000:]
    assert output.count('refused Unauthenticated') == 6
    assert 'DEBUG' in output and 'authorization: [redacted]' in output.lower()
    for value in (OLD, WRONG, SECRET):
        assert value not in output
    assert output.count('without TLS') == 1  # the plaintext warning, once


# -- TLS with tokens --------------------------------------------------------------------------
def test_tls_with_tokens_on_every_protocol(tmp_path: Path) -> None:
    from test_tls import make_certificate

    certfile, keyfile = make_certificate(tmp_path)
    ca = Path(certfile).read_bytes()
    with Flow(protocol=['grpc', 'http', 'websocket'], ssl_certfile=certfile, ssl_keyfile=keyfile,
              auth_token=OLD, quiet=True).add() as f:
        for protocol, port in zip(f.protocols, f.ports):
            options = {'root_certificates': ca} if protocol == 'grpc' else {'verify': certfile}
            with Client(host='localhost', port=port, protocol=protocol, tls=True, auth_token=OLD, **options) as c:
                assert c.post('/', inputs=None, return_responses=True)[0].status.code == 0
            with Client(host='localhost', port=port, protocol=protocol, tls=True, **options) as c:
                with pytest.raises(Unauthenticated):
                    c.post('/')


def test_log_filter_redacts_authorization_values(caplog: pytest.LogCaptureFixture) -> None:
    auth.redact_logs('plait-test-redact')
    logger = logging.getLogger('plait-test-redact')
    with caplog.at_level(logging.DEBUG, logger='plait-test-redact'):
        logger.debug('< %s', f'Authorization: Bearer {OLD}')
        logger.debug('headers %r', {'authorization': f'bearer {OLD}', 'x': 1})
        logger.debug('headers %r', [(b'authorization', f'Bearer {OLD}'.encode())])
    assert OLD not in caplog.text and caplog.text.count('[redacted]') == 3


def test_a_rotated_token_file_is_followed(tmp_path: Path) -> None:
    token_file = tmp_path / 'token'
    token_file.write_text(OLD + '\n')
    with Flow(protocol='http', auth_token_file=str(token_file), quiet=True).add() as f:
        def works(token: str) -> bool:
            with Client(port=f.port, protocol='http', auth_token=token) as client:
                return client.dry_run()

        assert works(OLD) and not works(NEW)
        token_file.write_text(f'{NEW}\n{OLD}\n')  # rotation: both while clients move over
        assert wait_until(lambda: works(NEW), timeout=20, interval=0.2) is not None
        assert works(OLD)
        token_file.write_text(NEW + '\n')
        assert wait_until(lambda: not works(OLD), timeout=20, interval=0.2) is not None
        token_file.write_text('\n')  # emptied by mistake: the tokens accepted so far stay
        assert works(NEW)


# -- Kubernetes and docker-compose exports reference Secrets ----------------------------------
def test_exports_reference_secrets_and_hold_no_token(tmp_path: Path) -> None:
    import kubernetes_validate
    import yaml

    f = Flow(protocol=['grpc', 'http'], auth_token=OLD, auth_token_file=None).add(replicas=2).add(name='b')
    k8s = tmp_path / 'k8s'
    f.to_kubernetes_yaml(str(k8s))
    files = [p for p in k8s.rglob('*') if p.is_file()]
    assert all(OLD not in p.read_text(errors='replace') for p in files)
    manifests = [d for p in sorted(k8s.rglob('*.yml')) if 'plait-app' not in p.parts
                 for d in yaml.safe_load_all(p.read_text()) if d]
    manifest_files = [str(p) for p in sorted(k8s.rglob('*.yml')) if 'plait-app' not in p.parts]
    command = [sys.executable, '-m', 'kubernetes_validate', '--strict', '-k', kubernetes_validate.latest_version(),
               *manifest_files]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    version = kubernetes_validate.latest_version()
    containers = {}
    for document in manifests:
        kubernetes_validate.validate(document, version, strict=True)
        if document['kind'] == 'Deployment':
            spec = document['spec']['template']['spec']
            containers[document['metadata']['name']] = (spec['containers'][0], spec.get('volumes'))
    for name, (container, _) in containers.items():
        env = {e['name']: e for e in container['env']}
        assert env[auth.EXECUTOR_SECRET_ENV]['valueFrom']['secretKeyRef'] == {
            'name': 'plait-flow-executor-secret', 'key': 'secret'}, name
    gateway, volumes = containers['gateway']
    assert {e['name']: e.get('value') for e in gateway['env']}[auth.TOKEN_FILE_ENV] == '/var/run/secrets/plait/token'
    assert volumes == [{'name': 'auth-token', 'secret': {'secretName': 'plait-flow-auth-token'}}]
    assert 'auth-token' not in json.dumps(containers['executor0'])
    readme = (k8s / 'README.md').read_text()
    assert 'kubectl create secret generic plait-flow-auth-token' in readme
    assert 'kubectl create secret generic plait-flow-executor-secret' in readme

    compose = tmp_path / 'compose' / 'docker-compose.yml'
    f.to_docker_compose_yaml(str(compose))
    text = compose.read_text()
    assert OLD not in text
    services = yaml.safe_load(text)['services']
    assert services['gateway']['environment'][auth.TOKEN_ENV].startswith('${PLAIT_AUTH_TOKEN:?')
    for name, service in services.items():
        assert service['environment'][auth.EXECUTOR_SECRET_ENV].startswith('${PLAIT_EXECUTOR_SECRET:?'), name


# -- the commands a container runs: plait executor / plait gateway --auth-token-file ----------
def test_plait_executor_and_gateway_take_a_token_file(tmp_path: Path) -> None:
    from test_worker import worker

    from plait.wire.ports import free_port

    token_file = tmp_path / 'token'
    token_file.write_text(f'{OLD}\n')
    executor_port, gateway_port = free_port(), free_port()
    with worker(executor_port, 'plait.executor:NoOpExecutor', '--auth-token-file', str(token_file)):
        with Client(port=executor_port) as client:
            with pytest.raises(Unauthenticated):
                client.post('/')
        with Client(port=executor_port, auth_token=OLD) as client:
            assert client.post('/', inputs=None, return_responses=True)[0].status.code == 0
        # a gateway in front of it: callers need the gateway's token, the gateway the executor's
        gateway_file = tmp_path / 'gateway-token'
        gateway_file.write_text(f'{NEW}\n')
        deployments = json.dumps([{'name': 'executor0', 'addresses': [f'127.0.0.1:{executor_port}']}])
        env = {k: v for k, v in os.environ.items() if not k.startswith('PLAIT_')}
        env[auth.EXECUTOR_SECRET_ENV] = OLD  # what the gateway sends its executors
        gateway = subprocess.Popen([sys.executable, '-m', 'plait.serve.gateway.runtime', '--host', '127.0.0.1',
                                    '--port', str(gateway_port), '--deployments', deployments,
                                    '--auth-token-file', str(gateway_file)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Client(port=gateway_port, auth_token=NEW) as client:
                assert wait_until(lambda: client.is_flow_ready(), timeout=30, interval=0.1) is not None
                assert client.post('/', inputs=None, return_responses=True)[0].status.code == 0
            with Client(port=gateway_port, auth_token=OLD) as client:
                with pytest.raises(Unauthenticated):
                    client.post('/')
        finally:
            gateway.terminate()
            gateway.wait(timeout=15)


@pytest.mark.parametrize('command', ['flow', 'deployment'])
def test_plait_flow_and_deployment_take_a_token_file(tmp_path: Path, command: str) -> None:
    from test_flow_cli import plait, terminate_and_check, wait_ready

    from plait.wire.ports import free_port

    port = free_port()
    token_file = tmp_path / 'token'
    token_file.write_text(f'{OLD}\n')
    if command == 'flow':
        flow_yml = tmp_path / 'flow.yml'
        flow_yml.write_text(f'jtype: Flow\nwith:\n  port: {port}\nexecutors:\n  - name: a\n')
        args = ['flow', str(flow_yml)]
    else:
        args = ['deployment', '--uses', 'plait.executor:NoOpExecutor', '--port', str(port), '--replicas', '2']
    proc = plait(*args, '--auth-token-file', str(token_file), '--quiet',
                 env={k: '' for k in auth.SECRET_ENVS})
    try:
        wait_ready(proc, port, command)  # readiness is open
        with Client(port=port) as client:
            assert not client.dry_run()
        with Client(port=port, auth_token=OLD) as client:
            assert client.dry_run() and client.post('/', inputs=None) is not None
    finally:
        terminate_and_check(proc)
