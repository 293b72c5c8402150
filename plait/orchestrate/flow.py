"""Flow: a graph of Deployments behind one Gateway (grpc, http and/or websocket).

    with Flow(port=12345).add(uses=MyExecutor) as f:
        f.post('/', docs)
"""

from __future__ import annotations

from typing import Any, Optional, Union

from plait import auth, jina_options
from plait.errors import BadConfig, UnknownOption
from plait.options import refuse_unknown
from plait.observability import OPTION_NAMES
from plait.orchestrate.observe_options import monitoring_ports
from plait.orchestrate.deployment import GATEWAY_MODULE, Deployment, auth_tokens, gateway_env
from plait.orchestrate.options import GATEWAY_OPTIONS, add_options, gateway_options
from plait.orchestrate.orchestration import Orchestration, as_list, public_endpoints
from plait.orchestrate.process import ServiceProcess
from plait.serve.gateway.config import START, GatewayConfig, check_route_options

def _refuse_add_options(name: str, kwargs: dict[str, Any]) -> None:
    """Flow.add takes a Deployment's options but for its gateway's: the Flow's gateway is the
    one clients reach, so those belong to Flow(...)."""
    where = f'Flow.add(name={name!r})'
    for key in kwargs:
        if (key in GATEWAY_OPTIONS or key == 'auth_token') and key not in add_options():
            raise UnknownOption(f'{where}: {key} is an option of the Flow\'s gateway: give it to Flow(...)', [key])
    refuse_unknown(where, kwargs, add_options(), jina_options.ADD)


class Flow(Orchestration):
    """A graph of Deployments behind one gateway. Besides the keywords below it takes every
    GatewayConfig option (timeout_send, cors, prefetch, ssl_certfile...); anything else is
    refused by name (plait.orchestrate.options)."""

    kind = 'Flow'

    def __init__(self, protocol: Union[str, list[str]] = 'grpc', port: Union[int, list[int], None] = None,
                 host: str = '0.0.0.0', timeout_ready: int = 600000, quiet: bool = False,
                 env: Optional[dict[str, str]] = None, restart: bool = True,
                 protocols: Union[str, list[str], None] = None, ports: Union[int, list[int], None] = None,
                 auth_token: Union[str, list[str], None] = None, **options: Any):
        refuse_unknown('Flow', options, GATEWAY_OPTIONS, jina_options.FLOW)
        self.protocols, self.ports = public_endpoints(protocol, port, protocols, ports)
        self.host = host
        self.timeout_ready = timeout_ready
        self.quiet = quiet
        self.env = env or {}
        self.restart = restart  # restart processes that die, with backoff
        self.gateway_options = gateway_options(options)
        if self.gateway_options.get('monitoring'):
            self.gateway_options['port_monitoring'] = monitoring_ports(
                self.gateway_options.get('port_monitoring'), 1, 'Flow')[0]
        # callers' tokens (also from auth_token_file or the environment); the executors' secret
        self.auth_tokens = auth_tokens(auth_token, self.gateway_options.get('auth_token_file'))
        self._secret = auth.executor_secret() or auth.new_secret()
        self._init_args = {'protocol': protocols if protocols is not None else protocol,
                           'port': ports if ports is not None else port, 'host': host, **options}
        if auth_token is not None:  # saved YAML names the variable to read it from, never the value
            self._init_args['auth_token'] = '${{ ENV.%s }}' % auth.TOKEN_ENV
        self.deployments: dict[str, Deployment] = {}
        self._add_args: list[dict[str, Any]] = []
        self._last: str = START
        self._host = host
        self._init_orchestration()

    # -- building ----------------------------------------------------------------------------
    def add(self, uses: Any = None, name: Optional[str] = None, needs: Union[str, list[str], None] = None,
            **kwargs: Any) -> 'Flow':
        """Add a Deployment after the previous one (or after `needs`); returns the Flow."""
        name = name or f'executor{len(self.deployments)}'
        _refuse_add_options(name, kwargs)
        given = dict(kwargs)
        if name in self.deployments or name == START:
            raise BadConfig(f'a deployment named {name!r} is already in this Flow')
        needs_list = as_list(needs) or [self._last]
        for need in needs_list:
            if need != START and need not in self.deployments:
                raise BadConfig(f'{name}: needs {need!r}, which is not in this Flow (have {list(self.deployments)})')
            if need != START and self.deployments[need].floating:
                raise BadConfig(f'{name}: needs {need!r}, which is floating: nothing waits for a floating '
                                'deployment, so nothing can follow it')
        if kwargs.get('floating') and len(needs_list) != 1:
            raise BadConfig(f'{name}: a floating deployment is fed by one predecessor (needs={needs_list})')
        env = {**{k: str(v) for k, v in self.env.items()}, **(kwargs.pop('env', None) or {})}
        kwargs.setdefault('timeout_ready', self.timeout_ready)
        kwargs.setdefault('quiet', self.quiet)
        kwargs.setdefault('restart', self.restart)
        for option in OPTION_NAMES:  # monitoring, tracing, metrics: the Flow's unless .add() says
            if option != 'port_monitoring' and self.gateway_options.get(option) not in (None, False):
                kwargs.setdefault(option, self.gateway_options[option])
        deployment = Deployment(uses=uses, name=name, needs=needs_list, env=env, **kwargs)
        deployment.serve_behind_gateway(self._secret, host_given='host' in kwargs)
        self.deployments[name] = deployment
        self._add_args.append({'uses': uses, 'name': name, 'needs': needs_list, **given})
        if not deployment.floating:  # as Jina: the next .add() chains after the last one not floating
            self._last = name
        return self

    def needs(self, needs: list[str], name: str = 'joiner', **kwargs: Any) -> 'Flow':
        """Join several branches with a pass-through Deployment."""
        return self.add(name=name, needs=needs, **kwargs)

    def needs_all(self, name: str = 'joiner', **kwargs: Any) -> 'Flow':
        """Join every branch that has no successor yet."""
        needed = {n for d in self.deployments.values() for n in d.needs}
        leaves = [n for n in self.deployments if n not in needed]
        return self.needs(leaves, name=name, **kwargs)

    def expose_endpoint(self, exec_endpoint: str, **kwargs: Any) -> None:
        """Serve `exec_endpoint` as its own HTTP route (summary, tags, methods... for OpenAPI)."""
        self.gateway_options.setdefault('expose_endpoints', {})[exec_endpoint] = \
            check_route_options(exec_endpoint, kwargs)

    def gateway_config(self) -> GatewayConfig:
        options = {'name': 'gateway', **self.gateway_options, 'host': self.host}
        return GatewayConfig(protocols=self.protocols, ports=self.ports,
                             deployments=[d.target() for d in self.deployments.values()], **options)

    # -- what Orchestration needs ------------------------------------------------------------
    def start(self) -> 'Flow':
        """Start every process; once all are ready, refuse (stopping them) a Flow whose chained
        executors' documents cannot meet (plait.orchestrate.schema_check)."""
        if self.running:
            return self
        super().start()
        from plait.orchestrate.schema_check import check_flow

        try:
            check_flow([d.target() for d in self.deployments.values()], self._schemas_of)
        except BadConfig:
            self.close()
            raise
        return self

    def _schemas_of(self, target: Any) -> dict[str, Any]:
        """The endpoints and document types one replica of `target` publishes ({} if it cannot say)."""
        import grpc
        from google.protobuf import empty_pb2, json_format

        from plait.proto import jina_common_pb2_grpc

        with grpc.insecure_channel(target.shards[0][0]) as channel:
            try:
                reply = jina_common_pb2_grpc.JinaDiscoverEndpointsRPCStub(channel).endpoint_discovery(
                    empty_pb2.Empty(), timeout=10, metadata=auth.credentials_metadata(self._secret) or None)
            except grpc.RpcError:
                return {}
        return json_format.MessageToDict(reply.schemas) if reply.schemas.fields else {}

    def _processes(self) -> list[ServiceProcess]:
        processes: list[ServiceProcess] = []
        for deployment in self.deployments.values():
            processes.extend(deployment.worker_processes())
        config = self.gateway_config()
        processes.append(ServiceProcess('gateway', GATEWAY_MODULE, ['--config-json', config.to_json()],
                                        env=gateway_env(self.env, self.auth_tokens, self._secret),
                                        echo=not self.quiet))
        return processes

    def _public(self) -> list[tuple[str, int]]:
        return list(zip(self.protocols, self.ports))

    def _grace(self) -> float:
        return float(self.gateway_options.get('grace', 10.0))

    @property
    def _tls(self) -> bool:  # type: ignore[override]
        return bool(self.gateway_options.get('ssl_certfile'))

    # -- talking to it -----------------------------------------------------------------------
    @property
    def monitoring_ports(self) -> dict[str, int]:
        """Where each process serves Prometheus metrics (monitoring=True): label -> port."""
        ports = {'gateway': self.gateway_options['port_monitoring']} if self.gateway_options.get('monitoring') else {}
        for deployment in self.deployments.values():
            ports.update(deployment.replica_monitoring_ports())
        return ports

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def protocol(self) -> str:
        return self.protocols[0]

    def is_flow_ready(self, timeout: float = 3.0) -> bool:
        return self._ready('flow', timeout)

    def dry_run(self, timeout: float = 3.0) -> bool:
        return self._ready('dry_run', timeout)

    # -- YAML --------------------------------------------------------------------------------
    @classmethod
    def load_config(cls, source: str, **overrides: Any) -> 'Flow':
        from plait.orchestrate.flow_yaml import flow_from_yaml
        return flow_from_yaml(source, **overrides)

    def save_config(self, path: str) -> None:
        from plait.orchestrate.flow_yaml import flow_to_yaml
        with open(path, 'w', encoding='utf-8') as f:
            f.write(flow_to_yaml(self))

    # -- export ------------------------------------------------------------------------------
    def to_kubernetes_yaml(self, output_base_path: str, k8s_namespace: Optional[str] = None,
                           image: Optional[str] = None, plait_package: Optional[str] = None) -> list[str]:
        """Write a Deployment and a Service per executor shard and for the gateway, the image's
        build context (Dockerfile, your modules, a wheel of this plait unless `plait_package`
        names a pip requirement to install instead) and a README under `output_base_path`;
        returns the paths written."""
        from plait.orchestrate.export.kubernetes import export_kubernetes
        self._exportable()
        return export_kubernetes(self, output_base_path, k8s_namespace, image, plait_package)

    def to_docker_compose_yaml(self, output_path: str = 'docker-compose.yml',
                               network_name: Optional[str] = None, image: Optional[str] = None,
                               publish_host: Optional[str] = None,
                               plait_package: Optional[str] = None) -> list[str]:
        """Write a docker-compose file (a service per executor replica, and the gateway, whose
        ports are published on `publish_host`, every interface by default) and the image's build
        context beside it; returns the paths written."""
        from plait.orchestrate.export.compose import export_docker_compose
        self._exportable()
        return export_docker_compose(self, output_path, network_name, image, publish_host, plait_package)

    def _exportable(self) -> None:
        external = [name for name, d in self.deployments.items() if d.external]
        if external:
            raise BadConfig(f'cannot export a Flow with external executors ({", ".join(external)}) yet: '
                            'their addresses are outside what the export builds')
