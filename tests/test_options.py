"""No silent drops: every keyword Jina documents for Flow, Flow.add, Deployment, Client and
post is either honoured by plait (pinned below) or refused at once as "not supported by
plait: X"; typos get "did you mean"; YAML keys follow the same rule; and the options of a
Deployment come from the configs that cross into its processes as JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import pytest

from plait import AsyncClient, Client, Deployment, Executor, Flow, jina_options
from plait.errors import BadConfig, UnknownOption
from plait.orchestrate import options as tables
from plait.options import parameters_of
from plait.serve.gateway.config import GatewayConfig
from plait.serve.worker_config import PER_PROCESS, WorkerConfig

# the Jina options plait honours, per call: a change here is a change of the compatible surface
HONOURED = {
    'FLOW': ['compression', 'cors', 'description', 'env', 'expose_endpoints', 'expose_graphql_endpoint', 'host',
             'metrics', 'metrics_exporter_host', 'metrics_exporter_port', 'monitoring', 'name',
             'no_crud_endpoints', 'no_debug_endpoints', 'port', 'port_monitoring', 'prefetch', 'protocol',
             'quiet', 'retries', 'ssl_certfile', 'ssl_keyfile', 'timeout_ready', 'timeout_send', 'title',
             'traces_exporter_host', 'traces_exporter_port', 'tracing', 'uvicorn_kwargs'],
    'ADD': ['allow_concurrent', 'env', 'external', 'floating', 'grpc_metadata', 'host', 'metrics', 'metrics_exporter_host',
            'metrics_exporter_port', 'monitoring', 'name', 'needs', 'no_reduce', 'polling', 'port',
            'port_monitoring', 'quiet', 'replicas', 'shards', 'timeout_ready', 'timeout_send', 'tls',
            'traces_exporter_host', 'traces_exporter_port', 'tracing', 'uses', 'uses_after', 'uses_after_address',
            'uses_before', 'uses_before_address', 'uses_dynamic_batching', 'uses_metas', 'uses_requests',
            'uses_with', 'when', 'workspace'],
    'DEPLOYMENT': ['allow_concurrent', 'compression', 'cors', 'description', 'env', 'external', 'floating', 'grpc_metadata', 'host',
                   'include_gateway', 'metrics', 'metrics_exporter_host', 'metrics_exporter_port', 'monitoring',
                   'name', 'needs', 'no_reduce', 'polling', 'port', 'port_monitoring', 'protocol', 'quiet',
                   'replicas', 'retries', 'shards', 'ssl_certfile', 'ssl_keyfile', 'timeout_ready',
                   'timeout_send', 'title', 'tls', 'traces_exporter_host', 'traces_exporter_port', 'tracing',
                   'uses', 'uses_after', 'uses_after_address', 'uses_before', 'uses_before_address',
                   'uses_dynamic_batching', 'uses_metas', 'uses_requests', 'uses_with', 'uvicorn_kwargs', 'when',
                   'workspace'],
    'EXECUTOR_SERVE': ['allow_concurrent', 'compression', 'cors', 'description', 'env', 'external', 'floating', 'grpc_metadata',
                       'host', 'metrics', 'metrics_exporter_host', 'metrics_exporter_port', 'monitoring', 'name',
                       'no_reduce', 'polling', 'port', 'port_monitoring', 'protocol', 'quiet', 'replicas',
                       'retries', 'shards', 'ssl_certfile', 'ssl_keyfile', 'stop_event', 'timeout_ready',
                       'timeout_send', 'title', 'tls', 'traces_exporter_host', 'traces_exporter_port', 'tracing',
                       'uses_after', 'uses_after_address', 'uses_before', 'uses_before_address',
                       'uses_dynamic_batching', 'uses_metas', 'uses_requests', 'uses_with', 'uvicorn_kwargs',
                       'when', 'workspace'],
    'CLIENT': ['asyncio', 'host', 'port', 'prefetch', 'protocol', 'tls', 'traces_exporter_host', 'traces_exporter_port',
               'tracing'],
    'POST': ['backoff_multiplier', 'continue_on_error', 'headers', 'initial_backoff', 'inputs', 'max_attempts',
             'max_backoff', 'metadata', 'on', 'on_always', 'on_done', 'on_error', 'parameters', 'prefetch',
             'request_size', 'results_in_order', 'return_responses', 'return_type', 'target_executor', 'timeout'],
}


@pytest.fixture(scope='module')
def flow() -> Flow:
    return Flow(quiet=True)


def _client_post(**kwargs: Any) -> None:
    with Client(port=1) as client:
        client.post('/', **kwargs)


# per Jina surface: (plait's accepted keywords, a call passing one keyword, the error's prefix)
def _surfaces(flow: Flow) -> dict[str, tuple[frozenset[str], Callable[..., Any], str]]:
    return {
        'FLOW': (tables.flow_options(), lambda **kw: Flow(**kw), 'Flow'),
        'ADD': (tables.add_options(), lambda **kw: flow.add(name='probe', **kw), "Flow.add(name='probe')"),
        'DEPLOYMENT': (tables.deployment_options(), lambda **kw: Deployment(**kw), "Deployment(name='executor')"),
        'EXECUTOR_SERVE': ((tables.deployment_options() - {'uses'}) | parameters_of(Executor.serve),
                           lambda **kw: Executor.serve(**kw), "Deployment(name='executor')"),
        'CLIENT': (parameters_of(AsyncClient.__init__), lambda **kw: Client(port=1, **kw), 'Client'),
        'POST': (parameters_of(AsyncClient.post), _client_post, 'post'),
    }


@pytest.mark.parametrize('surface', sorted(HONOURED))
def test_every_jina_option_is_honoured_or_refused_by_name(surface: str, flow: Flow) -> None:
    accepted, call, where = _surfaces(flow)[surface]
    jina = getattr(jina_options, surface)
    assert sorted(jina & accepted) == HONOURED[surface]
    for name in sorted(jina - accepted):
        with pytest.raises(UnknownOption) as info:
            call(**{name: 'x'})
        if surface == 'EXECUTOR_SERVE' and name == 'uses':
            expected = 'Executor.serve() serves Executor: it takes no uses='
        elif surface == 'ADD' and name in tables.GATEWAY_OPTIONS:
            expected = f"{where}: {name} is an option of the Flow's gateway: give it to Flow(...)"
        else:
            expected = f'{where}: not supported by plait: {name}'
        assert str(info.value) == expected
        assert info.value.options == [name]


@pytest.mark.parametrize('call, message', [
    (lambda: Flow(timeout_sendd=1000), "Flow: unknown option 'timeout_sendd' (did you mean timeout_send?)"),
    (lambda: Flow(no_crud_endpoint=True), "Flow: unknown option 'no_crud_endpoint' (did you mean no_crud_endpoints?)"),
    (lambda: Flow(zzz=1), "Flow: unknown option 'zzz'"),
    (lambda: Flow(zzz=1, timeout_sendd=1, floating=True),
     "Flow: not supported by plait: floating; unknown option 'timeout_sendd' (did you mean timeout_send?); "
     "unknown option 'zzz'"),
    (lambda: Deployment(uses_wiht={}), "Deployment(name='executor'): unknown option 'uses_wiht' (did you mean uses_with?)"),
    (lambda: Deployment(name='enc', replica=2), "Deployment(name='enc'): unknown option 'replica' (did you mean replicas?)"),
    (lambda: Client(port=1, protocl='http'), "Client: unknown option 'protocl' (did you mean protocol?)"),
    (lambda: _client_post(paramters={}), "post: unknown option 'paramters' (did you mean parameters?)"),
])
def test_a_typo_is_refused_with_the_intended_option(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(UnknownOption) as info:
        call()
    assert str(info.value) == message
    assert isinstance(info.value, BadConfig) and isinstance(info.value, TypeError)


def test_flow_add_typo_and_gateway_option(flow: Flow) -> None:
    with pytest.raises(UnknownOption, match=r"^Flow.add\(name='two'\): unknown option 'replica' \(did you mean "
                                            r"replicas\?\)$"):
        flow.add(name='two', replica=2)
    with pytest.raises(UnknownOption, match=r"^Flow.add\(name='two'\): cors is an option of the Flow's gateway: "
                                            r"give it to Flow\(...\)$"):
        flow.add(name='two', cors=True)
    assert 'two' not in flow.deployments


def test_async_post_refuses_too() -> None:
    async def post() -> None:
        async with AsyncClient(port=1) as client:
            async for _ in client.post('/', show_progress=True):
                pass

    with pytest.raises(UnknownOption, match=r'^post: not supported by plait: show_progress$'):
        asyncio.run(post())


def test_client_asyncio_true_is_the_async_client() -> None:
    client = Client(port=1, asyncio=True)
    assert isinstance(client, AsyncClient)
    assert isinstance(Client(port=1, asyncio=False), Client)


def _write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_flow_yaml_keys_follow_the_same_rule(tmp_path: Path) -> None:
    top = _write(tmp_path / 'top.yml', '''\
        jtype: Flow
        with:
          protocol: grpc
          floating: true
        ''')
    with pytest.raises(UnknownOption, match=r'^Flow: not supported by plait: floating$'):
        Flow.load_config(top)
    entry = _write(tmp_path / 'entry.yml', '''\
        jtype: Flow
        executors:
          - name: one
          - name: two
            reload: true
            timeout_sendd: 10
        ''')
    with pytest.raises(UnknownOption) as info:
        Flow.load_config(entry)
    assert str(info.value) == ("Flow.add(name='two'): not supported by plait: reload; "
                               "unknown option 'timeout_sendd' (did you mean timeout_send?)")


def test_plait_deployment_yaml_refuses_unknown_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / 'dep.yml', '''\
        jtype: Deployment
        with:
          uses: plait.executor:NoOpExecutor
          reload: true
        ''')
    out = subprocess.run([sys.executable, '-m', 'plait.cli.main', 'deployment', path], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert "plait deployment: error: Deployment(name='executor'): not supported by plait: reload" in out.stderr


def test_options_are_derived_from_the_configs() -> None:
    worker = {f.name for f in fields(WorkerConfig)} - set(PER_PROCESS)
    gateway = {f.name for f in fields(GatewayConfig)} - set(tables.GATEWAY_GRAPH)
    assert worker <= tables.deployment_options() and worker <= tables.add_options()
    assert gateway <= tables.deployment_options() and gateway <= tables.flow_options()
    # port_monitoring is per process: the gateway's port in Flow(), its replicas' ports in .add()
    assert not (gateway - worker - tables.TARGET_OPTIONS - {'port_monitoring'}) & tables.add_options()


def test_worker_config_crosses_into_the_process_as_json(tmp_path: Path) -> None:
    deployment = Deployment(uses='plait.executor:NoOpExecutor', name='enc', replicas=2, workspace=str(tmp_path),
                            allow_concurrent=True, grace=3.5, uses_with={'a': 1}, quiet=True)
    processes = deployment.worker_processes()
    assert len(processes) == 2
    for replica_id, process in enumerate(processes):
        assert process.args[0] == '--config-json' and len(process.args) == 2
        sent = json.loads(process.args[1])
        assert sent == {**sent, 'uses': 'plait.executor:NoOpExecutor', 'name': 'enc', 'replicas': 2,
                        'replica_id': replica_id, 'workspace': str(tmp_path), 'allow_concurrent': True,
                        'grace': 3.5, 'uses_with': {'a': 1}, 'port': deployment.worker_ports[0][replica_id]}
        assert set(sent) == {f.name for f in fields(WorkerConfig)}


def test_uses_with_that_cannot_cross_is_refused_when_built() -> None:
    with pytest.raises(BadConfig, match='JSON-serialisable'):
        Deployment(uses='plait.executor:NoOpExecutor', uses_with={'f': object()}, quiet=True)


def test_plait_executor_refuses_an_unknown_config_field() -> None:
    out = subprocess.run([sys.executable, '-m', 'plait.serve.worker', '--config-json', '{"port": 1, "bogus": 1}'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "plait executor: error: --config-json: WorkerConfig: unknown field(s) ['bogus']" in out.stderr


def test_expose_endpoint_refuses_route_options_it_does_not_take() -> None:
    f = Flow(protocol='http')
    f.expose_endpoint('/foo', summary='fine', methods=['PUT'])
    with pytest.raises(BadConfig, match=r'expose_endpoint /bar: not supported by plait: response_model'):
        f.expose_endpoint('/bar', response_model=dict)
    yaml_text = 'jtype: Flow\nwith:\n  protocol: http\n  expose_endpoints:\n    /foo:\n      sumary: typo\n'
    with pytest.raises(BadConfig, match=r'expose_endpoint /foo: not supported by plait: sumary'):
        Flow.load_config(yaml_text).gateway_config()
