"""The exported containers build and boot for real: a user's folder with two Executors (one with
2 replicas) is exported with `plait export docker-compose`, built and started with Compose on a
real Docker engine, and used from the host as a user would: `plait ping flow`, `plait dryrun`,
`/readyz`, a gRPC and an HTTP post, through the gateway's loopback-published ports only. A
replica stopped by its operator shows in readiness and comes back when started; one that
crashes is restarted by its policy; `down` leaves no container or network behind. The same
Flow exported for Kubernetes passes `kubernetes-validate --strict` and names this image.

Runs once per suite (module-scoped). Skipped, saying why, when Docker cannot run here (not root
to install or start it). Kept between runs for reuse: the base image (a Debian stand-in when no
registry is reachable, see docker_engine.py) and the image built here (`IMAGE`, whose layer
holding plait's dependencies stays cached until they change); the image an earlier run built
under that name is removed once superseded."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import kubernetes_validate
import pytest
import yaml
from docker_engine import Engine, Unavailable, base_images, ensure_base_image, image_id, run

from plait import Client, Document, DocumentArray
from plait.wire.ports import free_port

pytestmark = pytest.mark.timeout(900)  # the first test builds the images (minutes on a fresh machine)

IMAGE = 'plait-compose-e2e:latest'
PROJECT = f'plaite2e{os.getpid()}'
SECRET = secrets.token_urlsafe(32)
EXECUTORS = '''from plait import DocumentArray, Executor, requests


class Shout(Executor):
    @requests
    def shout(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.text = doc.text.upper()


class Stamp(Executor):
    def __init__(self, mark: str = '', **kwargs):
        super().__init__(**kwargs)
        self.mark = mark

    @requests
    def stamp(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.text = f'{doc.text}|{self.mark}{self.runtime_args.replica_id}'
'''
FLOW = '''jtype: Flow
with:
  protocol: [grpc, http]
  port: [{grpc}, {http}]
executors:
  - name: shout
    uses: Shout
    py_modules: [my_executors.py]
  - name: stamp
    uses: my_executors:Stamp
    uses_with:
      mark: r
    replicas: 2
'''
EXECUTOR_SERVICES = ['shout', 'stamp-rep-0', 'stamp-rep-1']


def plait(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The `plait` command, as a user runs it on the host."""
    return run([sys.executable, '-m', 'plait.cli.main', *args], timeout=timeout, check=False, cwd=cwd)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Poll `condition` until it returns something true; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f'{what}: not within {timeout:.0f} s')
        time.sleep(0.25)


class Stack:
    """The exported Flow under Compose: its files, ports, and the engine's view of it."""

    def __init__(self, engine: Engine, folder: Path, grpc_port: int, http_port: int) -> None:
        self.engine, self.folder = engine, folder
        self.file = folder / 'deploy' / 'docker-compose.yml'
        self.grpc_port, self.http_port = grpc_port, http_port
        self.export_output = ''  # what `plait export` printed

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # the gateway and its executors share a secret, read from the environment of compose
        env = {**os.environ, 'PLAIT_EXECUTOR_SECRET': SECRET}
        return run([*self.engine.compose, '-p', PROJECT, '-f', str(self.file), *args], timeout=timeout, env=env)

    def container(self, service: str) -> dict[str, Any]:
        (name,) = self.compose('ps', '-q', service).stdout.split()
        return json.loads(run(['docker', 'inspect', name], timeout=30).stdout)[0]

    def healthy(self, service: str) -> bool:
        state = self.container(service)['State']
        return state['Status'] == 'running' and state.get('Health', {}).get('Status') == 'healthy'

    def readiness(self) -> tuple[int, dict[str, Any]]:
        result = run(['curl', '-sS', '-m', '5', '-w', '\n%{http_code}', f'http://127.0.0.1:{self.http_port}/readyz'],
                     timeout=15, check=False)
        body, _, code = result.stdout.rpartition('\n')
        return int(code or 0), (json.loads(body) if body.startswith('{') else {})

    def all_ready(self) -> bool:
        code, body = self.readiness()
        return code == 200 and body.get('ready') is True and body.get('not_ready') == []


@pytest.fixture(scope='module')
def engine(tmp_path_factory):
    try:
        engine = Engine(str(tmp_path_factory.mktemp('docker')))
    except Unavailable as e:
        pytest.skip(f'Docker cannot run here: {e}')
    yield engine
    engine.close()


@pytest.fixture(scope='module')
def stack(engine, tmp_path_factory):
    """The user's folder, exported, built and up, every healthcheck healthy; `down` at the end."""
    folder = tmp_path_factory.mktemp('user')
    (folder / 'my_executors.py').write_text(EXECUTORS)
    grpc_port, http_port = free_port(), free_port()
    (folder / 'flow.yml').write_text(FLOW.format(grpc=grpc_port, http=http_port))
    stack = Stack(engine, folder, grpc_port, http_port)
    exported = plait('export', 'docker-compose', 'flow.yml', 'deploy/docker-compose.yml', '--image', IMAGE,
                     '--publish-host', '127.0.0.1', cwd=folder)
    assert exported.returncode == 0, exported.stderr
    stack.export_output = exported.stdout
    for base in base_images((folder / 'deploy' / 'Dockerfile').read_text()):
        try:
            ensure_base_image(base)
        except Unavailable as e:
            pytest.skip(f'the base image cannot be made available: {e}')
    previous = image_id(IMAGE)
    try:
        stack.compose('up', '--build', '-d', timeout=600)
        for service in [*EXECUTOR_SERVICES, 'gateway']:
            wait_for(lambda s=service: stack.healthy(s), f'{service} healthy')
        yield stack
    finally:
        stack.compose('down', '--remove-orphans', '--timeout', '20')
        if previous and previous != image_id(IMAGE):
            run(['docker', 'image', 'rm', previous], timeout=60, check=False)


def test_the_export_says_how_to_start_it_with_either_compose(stack):
    (next_line,) = [line for line in stack.export_output.splitlines() if line.startswith('next:')]
    assert 'docker compose -f deploy/docker-compose.yml up --build' in next_line
    assert 'docker-compose -f deploy/docker-compose.yml up --build' in next_line


def test_every_service_runs_the_one_image_with_no_wheel_left_in_it(stack):
    built = image_id(IMAGE)
    assert {stack.container(s)['Image'] for s in [*EXECUTOR_SERVICES, 'gateway']} == {built}
    probe = run(['docker', 'run', '--rm', '--entrypoint', 'sh', IMAGE, '-c',
                 'test ! -e /wheels && find / -xdev -name "plait-*.whl" && plait --version'], timeout=60)
    assert probe.stdout.split() == ['plait', plait_version()], probe.stdout


def plait_version() -> str:
    import plait as package

    return package.__version__


def test_only_the_gateway_publishes_ports_and_only_on_loopback(stack):
    for service in EXECUTOR_SERVICES:
        bindings = stack.container(service)['HostConfig']['PortBindings'] or {}
        assert bindings == {}, service
    gateway = stack.container('gateway')['HostConfig']['PortBindings']
    assert gateway == {f'{p}/tcp': [{'HostIp': '127.0.0.1', 'HostPort': str(p)}]
                       for p in (stack.grpc_port, stack.http_port)}
    for service in [*EXECUTOR_SERVICES, 'gateway']:
        assert stack.container(service)['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'


def test_ping_dryrun_and_readiness_from_the_host(stack):
    ping = plait('ping', 'flow', f'grpc://127.0.0.1:{stack.grpc_port}', '--attempts', '2')
    assert ping.returncode == 0, ping.stdout + ping.stderr
    for url in (f'grpc://127.0.0.1:{stack.grpc_port}', f'http://127.0.0.1:{stack.http_port}'):
        dryrun = plait('dryrun', url)
        assert dryrun.returncode == 0 and 'dry run successful' in dryrun.stdout, dryrun.stdout + dryrun.stderr
    assert stack.readiness() == (200, {'ready': True, 'not_ready': []})


def post_texts(stack: Stack, protocol: str, count: int = 4) -> list[str]:
    port = stack.grpc_port if protocol == 'grpc' else stack.http_port
    with Client(host='127.0.0.1', port=port, protocol=protocol) as client:
        docs = client.post('/', DocumentArray([Document(text=f'doc{i}') for i in range(count)]), request_size=1)
    return [doc.text for doc in docs]


@pytest.mark.parametrize('protocol', ['grpc', 'http'])
def test_posts_go_through_both_executors(stack, protocol):
    texts = post_texts(stack, protocol)
    assert sorted(t.split('|')[0] for t in texts) == ['DOC0', 'DOC1', 'DOC2', 'DOC3']
    assert {t.split('|')[1] for t in texts} <= {'r0', 'r1'}


def test_a_stopped_replica_shows_in_readiness_until_started_again(stack):
    stack.compose('stop', 'stamp-rep-1')
    state = stack.container('stamp-rep-1')['State']
    # SIGTERM drained it: exit 0, not 137 (killed when stop_grace_period ran out)
    assert (state['Status'], state['ExitCode']) == ('exited', 0)
    code, body = stack.readiness()
    assert code == 200 and body['ready'] is True  # the other replica serves
    assert [(r['deployment'], r['replica'], r['address']) for r in body['not_ready']] == [
        ('stamp', 1, 'stamp-rep-1:8080')]
    assert {t.split('|')[1] for t in post_texts(stack, 'grpc')} == {'r0'}
    assert stack.container('stamp-rep-1')['State']['Status'] == 'exited'  # stopped by hand: stays stopped
    stack.compose('start', 'stamp-rep-1')
    wait_for(lambda: stack.healthy('stamp-rep-1'), 'stamp-rep-1 healthy again')
    wait_for(stack.all_ready, 'readiness with every replica back')


def test_a_crashed_replica_is_restarted_by_its_policy(stack):
    before = stack.container('stamp-rep-0')
    os.kill(before['State']['Pid'], signal.SIGKILL)  # from the host, as the OOM killer would
    seen_down = wait_for(lambda: [r for r in stack.readiness()[1].get('not_ready', []) if r['replica'] == 0],
                         'readiness reporting the crashed replica', timeout=30)
    assert seen_down[0]['address'] == 'stamp-rep-0:8080'
    wait_for(lambda: stack.container('stamp-rep-0')['RestartCount'] > before['RestartCount'],
             'the restart policy restarting stamp-rep-0', timeout=60)
    wait_for(lambda: stack.healthy('stamp-rep-0'), 'stamp-rep-0 healthy after its restart')
    wait_for(stack.all_ready, 'readiness with every replica back')
    assert sorted(t.split('|')[0] for t in post_texts(stack, 'http')) == ['DOC0', 'DOC1', 'DOC2', 'DOC3']


def test_the_kubernetes_export_names_the_image_built_here(stack):
    out = stack.folder / 'k8s'
    exported = plait('export', 'kubernetes', 'flow.yml', 'k8s', '--image', IMAGE, cwd=stack.folder)
    assert exported.returncode == 0, exported.stderr
    version = kubernetes_validate.latest_version()
    images = set()
    for path in sorted(out.rglob('*.yml')):
        if 'plait-app' in path.parts:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(document, version, strict=True)
            if document['kind'] == 'Deployment':
                images |= {c['image'] for c in document['spec']['template']['spec']['containers']}
    assert images == {IMAGE}
    # the same build context, byte for byte: building it gives the image the compose services run
    deploy = stack.folder / 'deploy'
    for relative in ('Dockerfile', '.dockerignore', 'plait-app/my_executors.py', 'wheels/plait-requirements.txt',
                     f'wheels/plait-{plait_version()}-py3-none-any.whl'):
        assert (out / relative).read_bytes() == (deploy / relative).read_bytes(), relative
    assert image_id(IMAGE) == stack.container('gateway')['Image']


def test_down_leaves_no_container_or_network_behind(stack):
    stack.compose('down', '--remove-orphans', '--timeout', '20')
    label = f'label=com.docker.compose.project={PROJECT}'
    assert run(['docker', 'ps', '-aq', '--filter', label], timeout=30).stdout.split() == []
    assert run(['docker', 'network', 'ls', '-q', '--filter', label], timeout=30).stdout.split() == []
    assert run(['docker', 'network', 'ls', '-q', '--filter', f'name={PROJECT}'], timeout=30).stdout.split() == []
    assert image_id(IMAGE)  # kept for reuse (see the module docstring)
