"""`plait export kubernetes|docker-compose` and `Flow.to_kubernetes_yaml/to_docker_compose_yaml`:
the manifests pass `kubernetes-validate --strict`, the compose file has a healthcheck per service,
and the exported topology really boots: its container commands, run as local processes on
127.0.0.1, serve documents through the gateway."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

import plait
from flow_helpers import wait_until
from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.errors import BadConfig
from plait.orchestrate.export import cli_main
from plait.wire.ports import free_port

DATA = Path(__file__).parent / 'data' / 'export'
FLOW_YAML = DATA / 'flow.yml'
K8S_VERSION = kubernetes_validate.latest_version()  # the newest schemas the package ships
SERVING = health_pb2.HealthCheckResponse.SERVING


# ---------------------------------------------------------------------------------------- helpers

def load_manifests(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """{relative path: documents} of every YAML manifest under `folder`."""
    found = {}
    for path in sorted(folder.rglob('*.yml')):
        if 'plait-app' not in path.parts:
            found[str(path.relative_to(folder))] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def by_kind(manifests: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {d['metadata']['name']: d for docs in manifests.values() for d in docs if d['kind'] == kind}


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment['spec']['template']['spec']['containers']
    return container


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def set_flag(args: list[str], name: str, value: str) -> None:
    args[args.index(name) + 1] = value


def export_k8s(tmp_path: Path, namespace: str | None = 'plait-test') -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / 'k8s'
    argv = ['kubernetes', str(FLOW_YAML), str(out)] + (['--k8s-namespace', namespace] if namespace else [])
    assert cli_main(argv) == 0
    return load_manifests(out)


class Upper(Executor):
    @requests
    def up(self, docs: DocumentArray, **kwargs) -> None:
        for doc in docs:
            doc.text = doc.text.upper()


# ------------------------------------------------------------------------------------ Kubernetes

def test_every_kubernetes_manifest_passes_strict_validation(tmp_path):
    manifests = export_k8s(tmp_path)
    assert set(manifests) == {'first/first.yml', 'second-step/second-step-shard-0.yml',
                              'second-step/second-step-shard-1.yml', 'gateway/gateway.yml'}
    for path, documents in manifests.items():
        assert [d['kind'] for d in documents] == ['Deployment', 'Service'], path
        for document in documents:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
            assert document['metadata']['namespace'] == 'plait-test'


def test_kubernetes_validate_cli_accepts_the_files(tmp_path):
    export_k8s(tmp_path, namespace=None)
    files = [str(p) for p in sorted((tmp_path / 'k8s').rglob('*.yml')) if 'plait-app' not in p.parts]
    command = [sys.executable, '-m', 'kubernetes_validate', '--strict', '-k', K8S_VERSION, *files]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployments_and_services_match_and_drain(tmp_path):
    manifests = export_k8s(tmp_path)
    deployments, services = by_kind(manifests, 'Deployment'), by_kind(manifests, 'Service')
    names = {'first', 'second-step-shard-0', 'second-step-shard-1', 'gateway'}
    assert set(deployments) == set(services) == names
    for name, deployment in deployments.items():
        spec = deployment['spec']
        labels = spec['template']['metadata']['labels']
        assert spec['selector']['matchLabels'].items() <= labels.items()
        assert services[name]['spec']['selector'].items() <= labels.items()
        container = container_of(deployment)
        assert container['command'] == ['plait']
        assert container['resources']['requests'].keys() == {'cpu', 'memory'}
        grace = float(flag(container['args'], '--grace')) if '--grace' in container['args'] else 10.0
        assert container['lifecycle']['preStop']['exec']['command'][0] == 'sleep'
        prestop = float(container['lifecycle']['preStop']['exec']['command'][1])
        assert spec['template']['spec']['terminationGracePeriodSeconds'] >= prestop + grace
        ports = {p['containerPort'] for p in container['ports']}
        assert {p['targetPort'] for p in services[name]['spec']['ports']} == ports
    assert deployments['first']['spec']['replicas'] == 1
    assert deployments['second-step-shard-1']['spec']['replicas'] == 2
    args = container_of(deployments['second-step-shard-1'])['args']
    assert args[:3] == ['executor', '--uses', 'export_executors:Tagger']
    assert [flag(args, f) for f in ('--shard-id', '--shards', '--name')] == ['1', '2', 'Second_Step']
    assert json.loads(flag(args, '--uses-with')) == {'suffix': 'b'}


def test_probes_are_native_grpc_with_readiness_on_the_gateway(tmp_path):
    deployments = by_kind(export_k8s(tmp_path), 'Deployment')
    for name, deployment in deployments.items():
        container = container_of(deployment)
        port = container['ports'][0]['containerPort']
        ready = 'readiness' if name == 'gateway' else ''
        assert container['readinessProbe']['grpc'] == {'port': port, 'service': ready}
        assert container['livenessProbe']['grpc'] == {'port': port, 'service': ''}
        assert container['startupProbe']['grpc'] == {'port': port, 'service': ''}
        # startup may take timeout_ready (600 s by default)
        startup = container['startupProbe']
        assert startup['periodSeconds'] * startup['failureThreshold'] >= 600


def test_gateway_is_told_every_shard_address(tmp_path):
    gateway = container_of(by_kind(export_k8s(tmp_path), 'Deployment')['gateway'])
    args = gateway['args']
    assert args[0] == 'gateway'
    assert (flag(args, '--protocol'), flag(args, '--port')) == ('grpc', '12345')
    targets = {t['name']: t for t in json.loads(flag(args, '--deployments'))}
    assert targets['first']['addresses'] == ['first.plait-test.svc:8080']
    assert targets['first']['needs'] == ['gateway']
    assert targets['Second_Step']['shards'] == [['second-step-shard-0.plait-test.svc:8080'],
                                                ['second-step-shard-1.plait-test.svc:8080']]
    assert targets['Second_Step']['needs'] == ['first']
    assert targets['Second_Step']['polling'] == {'*': 'ALL'}


def test_http_gateway_gets_http_probes(tmp_path):
    flow = Flow(protocol='http', port=8000, quiet=True).add(uses='export_executors:Tagger', name='tag')
    flow.to_kubernetes_yaml(str(tmp_path / 'out'))
    gateway = container_of(by_kind(load_manifests(tmp_path / 'out'), 'Deployment')['gateway'])
    assert gateway['readinessProbe']['httpGet'] == {'path': '/readyz', 'port': 8000, 'scheme': 'HTTP'}
    assert gateway['livenessProbe']['httpGet'] == {'path': '/livez', 'port': 8000, 'scheme': 'HTTP'}
    for docs in load_manifests(tmp_path / 'out').values():
        for document in docs:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_gateway_options_travel_with_the_gateway(tmp_path):
    flow = Flow(port=[8000, 8001], protocol=['grpc', 'http'], timeout_send=5000, retries=2, cors=True,
                quiet=True).add(uses='export_executors:Tagger', name='tag', env={'MY_VAR': '1'})
    flow.to_kubernetes_yaml(str(tmp_path / 'out'))
    deployments = by_kind(load_manifests(tmp_path / 'out'), 'Deployment')
    args = container_of(deployments['gateway'])['args']
    assert args[args.index('--protocol'):args.index('--protocol') + 6] == [
        '--protocol', 'grpc', 'http', '--port', '8000', '8001']
    assert flag(args, '--timeout-send') == '5000' and '--cors' in args
    assert json.loads(flag(args, '--config-json')) == {'retries': 2}
    assert container_of(deployments['tag'])['env'] == [  # and the secret its gateway shares, by reference
        {'name': 'MY_VAR', 'value': '1'},
        {'name': 'PLAIT_EXECUTOR_SECRET',
         'valueFrom': {'secretKeyRef': {'name': 'plait-flow-executor-secret', 'key': 'secret'}}}]


def test_the_image_context_holds_the_users_code(tmp_path):
    export_k8s(tmp_path)
    out = tmp_path / 'k8s'
    dockerfile = (out / 'Dockerfile').read_text()
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    assert re.findall(r'^FROM .*$', dockerfile, re.M) == [f'FROM python:{python}-slim AS build',
                                                          f'FROM python:{python}-slim']
    wheel = f'plait-{plait.__version__}-py3-none-any.whl'
    assert f'ARG PLAIT_PACKAGE=/wheels/{wheel}' in dockerfile and (out / 'wheels' / wheel).is_file()
    final_stage = dockerfile.split('\nFROM ')[-1]  # the image itself: the venv and the user's code, no wheels
    assert re.findall(r'^COPY .*$', final_stage, re.M) == ['COPY --from=build /opt/plait /opt/plait',
                                                           'COPY plait-app/ /app/']
    assert 'ENTRYPOINT ["plait"]' in final_stage and 'PYTHONPATH=/app' in final_stage
    copied = out / 'plait-app' / 'export_executors.py'
    assert copied.read_text() == (DATA / 'export_executors.py').read_text()
    readme = (out / 'README.md').read_text()
    assert 'docker build' in readme and 'kubectl apply' in readme


def test_a_dockerfile_plait_did_not_write_is_kept(tmp_path):
    (tmp_path / 'Dockerfile').write_text('FROM scratch\n')
    flow = Flow(quiet=True).add(uses='export_executors:Tagger')
    with pytest.raises(BadConfig, match='not written by plait'):
        flow.to_docker_compose_yaml(str(tmp_path / 'docker-compose.yml'))
    assert (tmp_path / 'Dockerfile').read_text() == 'FROM scratch\n'


def test_executor_defined_in_a_function_cannot_be_exported(tmp_path):
    class Local(Executor):
        pass

    flow = Flow(quiet=True).add(uses=Local, name='local')
    with pytest.raises(BadConfig, match='local: Executor .*Local is defined inside a function'):
        flow.to_kubernetes_yaml(str(tmp_path / 'out'))


def test_executor_defined_in_main_cannot_be_exported(tmp_path):
    script = f'''
from plait import Executor, Flow
class Mine(Executor):
    pass
Flow(quiet=True).add(uses=Mine, name='mine').to_docker_compose_yaml({str(tmp_path / 'dc.yml')!r})
'''
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'mine: Executor Mine is defined in the script being run (__main__)' in result.stderr
    assert not (tmp_path / 'dc.yml').exists()


def test_installed_classes_are_referenced_by_name(tmp_path):
    flow = Flow(quiet=True).add(name='noop').add(uses=Upper, name='upper')
    flow.to_kubernetes_yaml(str(tmp_path / 'out'))
    deployments = by_kind(load_manifests(tmp_path / 'out'), 'Deployment')
    assert flag(container_of(deployments['noop'])['args'], '--uses') == 'plait.executor:NoOpExecutor'
    assert flag(container_of(deployments['upper'])['args'], '--uses') == f'{__name__}:Upper'


def test_executor_yaml_becomes_a_class_reference_with_its_arguments(tmp_path):
    module = tmp_path / 'yaml_export_exec.py'
    module.write_text('from plait import Executor\n\nclass YamlExported(Executor):\n    pass\n')
    config = tmp_path / 'exec.yml'
    config.write_text('jtype: YamlExported\nwith:\n  size: 3\nmetas:\n  note: hi\npy_modules:\n'
                      '  - yaml_export_exec.py\n')
    flow = Flow(quiet=True).add(uses=str(config), name='fromyaml', uses_with={'extra': True})
    written = flow.to_docker_compose_yaml(str(tmp_path / 'out' / 'docker-compose.yml'))
    assert str(tmp_path / 'out' / 'plait-app' / 'yaml_export_exec.py') in written
    services = yaml.safe_load((tmp_path / 'out' / 'docker-compose.yml').read_text())['services']
    command = services['fromyaml']['command']
    assert flag(command, '--uses') == 'yaml_export_exec:YamlExported'
    assert json.loads(flag(command, '--uses-with')) == {'size': 3, 'extra': True}
    assert json.loads(flag(command, '--uses-metas')) == {'note': 'hi'}


# ---------------------------------------------------------------------------------------- compose

def test_compose_has_a_service_per_replica_with_healthchecks(tmp_path):
    target = tmp_path / 'docker-compose.yml'
    assert cli_main(['docker-compose', str(FLOW_YAML), str(target), '--network-name', 'plait-net']) == 0
    document = yaml.safe_load(target.read_text())
    services = document['services']
    assert set(services) == {'first', 'second-step-shard-0-rep-0', 'second-step-shard-0-rep-1',
                             'second-step-shard-1-rep-0', 'second-step-shard-1-rep-1', 'gateway'}
    for name, service in services.items():
        test = service['healthcheck']['test']
        assert test[:3] == ['CMD', 'plait', 'ping'], name
        assert service['entrypoint'] == ['plait']
        assert service['build'] == {'context': '.', 'dockerfile': 'Dockerfile'}
        assert service['networks'] == ['plait-net']
    assert services['first']['healthcheck']['test'][3:5] == ['executor', 'grpc://127.0.0.1:8080']
    assert services['gateway']['healthcheck']['test'][3:5] == ['flow', 'grpc://127.0.0.1:12345']
    assert services['gateway']['ports'] == ['12345:12345']
    assert services['gateway']['depends_on'] == {
        name: {'condition': 'service_healthy'} for name in services if name != 'gateway'}
    targets = {t['name']: t for t in json.loads(flag(services['gateway']['command'], '--deployments'))}
    assert targets['Second_Step']['shards'] == [
        ['second-step-shard-0-rep-0:8080', 'second-step-shard-0-rep-1:8080'],
        ['second-step-shard-1-rep-0:8080', 'second-step-shard-1-rep-1:8080']]
    replica_ids = {flag(services[n]['command'], '--replica-id') for n in services if '-rep-' in n}
    assert replica_ids == {'0', '1'}
    assert document['networks'] == {'plait-net': {'name': 'plait-net', 'driver': 'bridge'}}
    assert (tmp_path / 'Dockerfile').exists() and (tmp_path / 'plait-app' / 'export_executors.py').exists()


# -------------------------------------------------------------------------------------------- CLI

def test_export_cli_reports_a_bad_flow_and_exits_1(tmp_path, capsys):
    bad = tmp_path / 'bad.yml'
    bad.write_text('jtype: Flow\nexecutors:\n  - name: a\n    uses: [unclosed\n')
    assert cli_main(['kubernetes', str(bad), str(tmp_path / 'out')]) == 1
    error = capsys.readouterr().err
    assert error.startswith('plait export: error:') and 'line 5' in error
    assert cli_main(['docker-compose', str(tmp_path / 'missing.yml'), str(tmp_path / 'dc.yml')]) == 1
    assert 'cannot read YAML file' in capsys.readouterr().err


def test_export_help_has_examples(capsys):
    assert cli_main(['--help']) == 0
    assert 'plait export kubernetes flow.yml' in capsys.readouterr().out
    assert cli_main(['kubernetes']) == 2
    assert 'the following arguments are required: flow, outdir' in capsys.readouterr().err


# ------------------------------------------------------------------ the exported topology boots

def wait_serving(address: str, service: str, processes: dict[str, subprocess.Popen], logs: Path,
                 timeout: float = 60.0) -> None:
    """Until gRPC health `service` at `address` is SERVING; fail early when a process died."""
    def died() -> str | None:
        return next((f'{name} exited with {proc.returncode}:\n{(logs / name).read_text()}'
                     for name, proc in processes.items() if proc.poll() is not None), None)

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            try:
                return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status == SERVING
            except grpc.RpcError:
                return False

        if wait_until(serving, timeout, interval=0.2, abort=died) is None:
            pytest.fail(f'{address} health {service!r} not SERVING within {timeout}s')


def local_command(container: dict[str, Any]) -> list[str]:
    """The container's `plait ...` command, run by this interpreter."""
    command = container['command'] + container['args']
    assert command[0] == 'plait'
    return [sys.executable, '-m', 'plait.cli.main', *command[1:]]


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_the_exported_kubernetes_topology_boots_and_serves(tmp_path):
    manifests = export_k8s(tmp_path)
    deployments, services = by_kind(manifests, 'Deployment'), by_kind(manifests, 'Service')
    app = tmp_path / 'k8s' / 'plait-app'  # what the image has in /app, on PYTHONPATH
    # Kubernetes: service name -> cluster address; here: 127.0.0.1 and a fresh port per Service
    local = {name: free_port() for name in services}
    health_checks: list[tuple[str, str]] = []
    commands: dict[str, list[str]] = {}
    for name, deployment in deployments.items():
        container = container_of(deployment)
        command = local_command(container)
        set_flag(command, '--host', '127.0.0.1')
        assert int(flag(command, '--port')) == services[name]['spec']['ports'][0]['targetPort']
        set_flag(command, '--port', str(local[name]))
        if name == 'gateway':
            targets = json.loads(flag(command, '--deployments'))
            for target in targets:
                grid = target.pop('shards', None) or [target.pop('addresses')]
                # 'second-step-shard-0.plait-test.svc:8080' -> the Service name -> its local port
                target['shards'] = [[f"127.0.0.1:{local[a.split(':')[0].split('.')[0]]}" for a in row]
                                    for row in grid]
            set_flag(command, '--deployments', json.dumps(targets))
        commands[name] = command
        for probe in ('startupProbe', 'readinessProbe', 'livenessProbe'):
            health_checks.append((f'127.0.0.1:{local[name]}', container[probe]['grpc']['service']))

    logs = tmp_path / 'logs'
    logs.mkdir()
    env = {**os.environ, 'PYTHONPATH': str(app), 'PLAIT_LOG_LEVEL': 'INFO'}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with open(logs / name, 'w') as log:
                processes[name] = subprocess.Popen(command, cwd=app, env=env, stdout=log,
                                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        gateway = f'127.0.0.1:{local["gateway"]}'
        wait_serving(gateway, 'readiness', processes, logs)
        for address, service in health_checks:  # what kubelet's gRPC probes would ask
            wait_serving(address, service, processes, logs, timeout=10)

        with Client(host='127.0.0.1', port=local['gateway'], protocol='grpc') as client:
            inputs = DocumentArray([Document(text=f'doc{i}') for i in range(4)])
            docs = client.post('/', inputs, request_size=2)
        assert sorted(d.text.split('|')[0] for d in docs) == ['doc0', 'doc1', 'doc2', 'doc3']
        for doc in docs:  # executor `first` then both shards of Second_Step (polling ALL)
            assert re.fullmatch(r'doc\d\|a0\|b[01]', doc.text), doc.text

        # the compose healthchecks (`plait ping ...` inside each container) pass against it too
        compose_file = tmp_path / 'compose' / 'docker-compose.yml'
        assert cli_main(['docker-compose', str(FLOW_YAML), str(compose_file)]) == 0
        compose = yaml.safe_load(compose_file.read_text())['services']
        for service, local_name in (('gateway', 'gateway'), ('first', 'first')):
            test = compose[service]['healthcheck']['test']  # CMD plait ping KIND URL ...
            url = re.sub(r':\d+$', f':{local[local_name]}', test[4])
            ping = [sys.executable, '-m', 'plait.cli.main', *test[2:4], url, *test[5:]]
            result = subprocess.run(ping, capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
    finally:
        stop(processes)
