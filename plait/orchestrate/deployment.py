"""Deployment: one Executor served as replicas x shards, each replica its own process. One
replica of one shard listens on `port` itself; otherwise a gateway on `port` balances over
replicas and fans out to shards."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Union

from plait import auth, jina_options
from plait.config import to_json
from plait.errors import BadConfig
from plait.options import refuse_unknown
from plait.orchestrate.observe_options import monitoring_ports
from plait.orchestrate.gpus import device_per_replica
from plait.orchestrate.orchestration import LOCAL_HOST, Orchestration, public_endpoints
from plait.wire.ports import free_port
from plait.orchestrate.process import ServiceProcess
from plait.serve.gateway.config import START, DeploymentTarget, GatewayConfig
from plait.serve.worker_config import WorkerConfig
from plait.uses import class_reference, resolve_uses

WORKER_MODULE = 'plait.serve.worker'
GATEWAY_MODULE = 'plait.serve.gateway.runtime'


def _config_json(config: WorkerConfig) -> str:
    try:
        return to_json(config)
    except TypeError as e:
        raise BadConfig(f'{config.name}: uses_with, uses_metas and the other options must be '
                        f'JSON-serialisable (they are sent to another process): {e}') from None


# gateway options a lone replica honours itself (it checks callers' tokens)
_REPLICA_HONOURS = ('auth_token_file',)


def auth_tokens(option: Union[str, list[str], None], token_file: Optional[str]) -> tuple[str, ...]:
    """The tokens callers must send: `auth_token`, `auth_token_file`, else the environment."""
    try:
        return auth.load_tokens(option, token_file)
    except auth.AuthConfigError as e:
        raise BadConfig(str(e)) from None


def gateway_env(env: dict[str, str], tokens: tuple[str, ...], secret: Optional[str]) -> dict[str, str]:
    """What a local gateway process is told in its environment (never on its command line)."""
    env = {k: str(v) for k, v in env.items()}
    if tokens:
        env[auth.TOKEN_ENV] = auth.as_env(tokens)
    if secret:
        env[auth.EXECUTOR_SECRET_ENV] = secret
    return env


def _as_names(value: Union[str, list[str], None]) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def normalize_polling(polling: Union[str, dict, None]) -> dict[str, str]:
    if polling is None:
        return {'*': 'ANY'}
    if isinstance(polling, str):
        polling = {'*': polling}
    result = {}
    for endpoint, mode in polling.items():
        if str(mode).upper() not in ('ANY', 'ALL'):
            raise BadConfig(f'polling {endpoint!r}: {mode!r}; use ANY or ALL')
        result[endpoint] = str(mode).upper()
    return result


def _checked_when(name: str, when: dict | None) -> dict | None:
    """Reject a malformed `when=` condition here, not later inside the gateway process."""
    if when is not None:
        from plait.serve.gateway.filtering import compile_condition

        try:
            compile_condition(when)
        except ValueError as e:
            raise BadConfig(f'{name}: when={when!r}: {e}') from None
    return when


def external_addresses(name: str, host: Any, port: Any) -> tuple[list[str], bool]:
    """The replica addresses of an external executor, as Jina takes them: `host='h', port=p`,
    `host='h', port=[p1, p2]`, or `host=['h1:p1', 'grpcs://h2:p2', ...]`; and whether a
    `grpcs://` address asks for TLS."""
    hosts = host if isinstance(host, (list, tuple)) else [host] if host else []
    ports = port if isinstance(port, (list, tuple)) else [port] if port else []
    if not hosts:
        raise BadConfig(f'{name}: external=True needs host= (and port=): where the executor is served')
    tls, addresses = False, []
    for h in hosts:
        h = str(h)
        for scheme in ('grpcs://', 'grpc://'):
            if h.startswith(scheme):
                tls, h = tls or scheme == 'grpcs://', h[len(scheme):]
        addresses.append(h)
    if all(':' in a for a in addresses):
        return addresses, tls
    if len(addresses) == 1 and ports:
        return [f'{addresses[0]}:{p}' for p in ports], tls
    if len(addresses) == len(ports):
        return [f'{a}:{p}' for a, p in zip(addresses, ports)], tls
    raise BadConfig(f'{name}: external=True: give host="h", port=p (or a list of ports), or host=["h1:p1", ...] '
                    f'(got host={host!r}, port={port!r})')


class Deployment(Orchestration):
    """One Executor as replicas x shards; `with Deployment(uses=MyExecutor, port=12345): ...`.

    Besides the keywords below it takes every WorkerConfig field (uses_with, name, replicas,
    shards, grace...), how a gateway routes to it (needs, polling, when, timeout_send) and,
    for the gateway in front of several replicas, every GatewayConfig option; anything else is
    refused by name (plait.orchestrate.options)."""

    kind = 'Deployment'

    def __init__(self, uses: Any = None, *, port: Union[int, list[int], None] = None,
                 protocol: Union[str, list[str]] = 'grpc', include_gateway: bool = True,
                 timeout_ready: int = 600000, env: Optional[dict[str, str]] = None, quiet: bool = False,
                 restart: bool = True, protocols: Union[str, list[str], None] = None,
                 ports: Union[int, list[int], None] = None, port_monitoring: Any = None,
                 auth_token: Union[str, list[str], None] = None, uses_before: Any = None, uses_after: Any = None,
                 **options: Any):
        from plait.orchestrate import options as tables

        refuse_unknown(f"Deployment(name={options.get('name', 'executor')!r})", options,
                       tables.WORKER_OPTIONS | tables.TARGET_OPTIONS | tables.GATEWAY_OPTIONS,
                       jina_options.DEPLOYMENT)
        self.worker = WorkerConfig(**tables.worker_options(options))
        self.gateway_options = tables.gateway_options(options)
        target = tables.target_options(options)
        name = self.worker.name
        if self.replicas < 1 or self.shards < 1:
            raise BadConfig(f'{name}: replicas and shards must be >= 1 (got {self.replicas} and {self.shards})')
        self.spec = resolve_uses(uses, self.worker.uses_with, self.worker.uses_metas)  # fails early, here
        self.uses = uses
        self.uses_with = self.worker.uses_with
        self.uses_metas = self.worker.uses_metas
        _config_json(replace(self.worker, uses_with=self.spec.uses_with, uses_metas=self.spec.metas))
        self._check_batching()
        self.polling = normalize_polling(target.get('polling'))
        self.needs = _as_names(target.get('needs'))
        self.when = _checked_when(name, target.get('when'))
        self.timeout_send = target.get('timeout_send')
        self.floating = bool(target.get('floating', False))
        self.no_reduce = bool(target.get('no_reduce', False))
        self.external = bool(target.get('external', False))
        self.tls = bool(target.get('tls', False))
        self.grpc_metadata = target.get('grpc_metadata')
        self.external_addresses: list[str] = []
        if self.external:
            self.external_addresses, tls = external_addresses(name, options.get('host'), port)
            self.tls = self.tls or tls
        self.protocols, self.ports = public_endpoints(protocol, port, protocols, ports)
        self._ports_given = port is not None or ports is not None
        self.include_gateway = include_gateway  # False: no gateway where a replica can serve alone
        self.timeout_ready = timeout_ready
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.gpus = device_per_replica(self.env, self.replicas)  # CUDA_VISIBLE_DEVICES=RR...: one per replica
        self.quiet = quiet
        self.restart = restart
        # uses_before / uses_after: an executor each request passes before the shards, and the one
        # that gets every shard's answer (docs_matrix); each one more process, reached by the gateway
        # (uses_before_address / uses_after_address: such executors served elsewhere, as Jina takes them)
        given = {'uses_before': uses_before, 'uses_after': uses_after}
        for side, value in given.items():
            if value is not None and target.get(f'{side}_address'):
                raise BadConfig(f'{name}: give {side} (an executor this Deployment starts) or {side}_address '
                                '(one served elsewhere), not both')
        self.around = {side: resolve_uses(value) for side, value in given.items() if value is not None}
        self._around_ports = {side: free_port() for side in self.around}
        # where the gateway reaches them: the ones started here, on loopback, or the given addresses
        self.around_addresses = {f'{side}_address': f'{LOCAL_HOST}:{port}' for side, port in self._around_ports.items()}
        self.around_addresses.update({k: target[k] for k in ('uses_before_address', 'uses_after_address')
                                      if target.get(k)})
        self._with_gateway = (self.replicas > 1 or self.shards > 1 or self._gateway_asked()
                              or bool(self.around_addresses))
        # replica ports: [shard][replica]
        self.worker_ports = ([[self.port]] if not self._with_gateway
                             else [[free_port() for _ in range(self.replicas)] for _ in range(self.shards)])
        self._host = self.host
        # monitoring=True: a Prometheus port per replica, in order, then one for the gateway
        self._monitoring_ports = (monitoring_ports(port_monitoring, self.replicas * self.shards
                                                   + int(self._with_gateway), name)
                                  if self.worker.monitoring else [])
        self.auth_tokens = auth_tokens(auth_token, self.gateway_options.get('auth_token_file'))
        # executors behind a gateway accept only its calls, and listen where it reaches them
        self._secret: Optional[str] = (auth.executor_secret() or auth.new_secret()) if self._with_gateway else None
        self._worker_host = LOCAL_HOST if self._with_gateway else self.host
        self._init_orchestration()

    def serve_behind_gateway(self, secret: str, host_given: bool) -> None:
        """This Deployment's replicas are reached only through a Flow's gateway sharing
        `secret`: they refuse other callers and listen on loopback unless `host` was given."""
        self._secret = secret
        self.auth_tokens = ()
        self._worker_host = self.host if host_given else LOCAL_HOST

    def _worker_env(self, replica_id: int = 0) -> dict[str, str]:
        env = dict(self.env)
        if self.gpus is not None:
            env['CUDA_VISIBLE_DEVICES'] = self.gpus[replica_id]
        if self._secret:
            env[auth.EXECUTOR_SECRET_ENV] = self._secret
        elif self.auth_tokens:  # the replica is what callers reach
            env[auth.TOKEN_ENV] = auth.as_env(self.auth_tokens)
        return env

    # the worker options every replica gets, readable as attributes
    name = property(lambda self: self.worker.name)
    host = property(lambda self: self.worker.host)
    replicas = property(lambda self: self.worker.replicas)
    shards = property(lambda self: self.worker.shards)
    grace = property(lambda self: self.worker.grace)
    workspace = property(lambda self: self.worker.workspace)
    allow_concurrent = property(lambda self: self.worker.allow_concurrent)
    uses_requests = property(lambda self: self.worker.uses_requests)

    uses_dynamic_batching = property(lambda self: self.worker.uses_dynamic_batching)
    # where clients reach it: the first of its protocols and ports
    protocol = property(lambda self: self.protocols[0])
    port = property(lambda self: self.ports[0])

    def _check_batching(self) -> None:
        """Refuse dynamic batching options that cannot apply to this Executor, here and now."""
        batching = self.uses_dynamic_batching
        if batching is not None and not isinstance(batching, dict):
            raise BadConfig(f'{self.name}: uses_dynamic_batching takes a dict of endpoint -> options, '
                            f'got {batching!r}')
        if batching or self.spec.dynamic_batching or self.spec.cls.dynamic_batching:
            from plait.serve.batching import check_executor_class, merge_options

            check_executor_class(self.spec.cls, self.uses_requests or self.spec.requests,
                                 merge_options(self.spec.dynamic_batching or {}, batching), self.name)

    def _gateway_asked(self) -> bool:
        """Something only a gateway does was asked for: a protocol other than gRPC alone (an
        Executor process speaks gRPC; with include_gateway=False as well, the gateway serving
        HTTP or WebSocket on `port` is what Jina's Executor would serve itself), a `when`
        filter, or a gateway option (not at its default)."""
        from plait.orchestrate.options import WORKER_OPTIONS

        defaults = GatewayConfig()
        return self.protocols != ['grpc'] or self.when is not None or any(
            getattr(defaults, k) != v for k, v in self.gateway_options.items()
            if k not in WORKER_OPTIONS and k not in _REPLICA_HONOURS)

    # -- what to run -------------------------------------------------------------------------
    def _uses_arg(self) -> str:
        if isinstance(self.uses, str) and self.uses.endswith(('.yml', '.yaml')):
            return self.uses
        return class_reference(self.spec.cls)

    def worker_config(self, shard_id: int, replica_id: int, port: int, uses: Optional[str] = None) -> WorkerConfig:
        """What one replica process is told: this Deployment's worker options, its place and port."""
        uses = uses or self._uses_arg()
        is_yaml = uses.endswith(('.yml', '.yaml'))
        index = shard_id * self.replicas + replica_id
        return replace(self.worker, uses=uses, uses_with=self.uses_with if is_yaml else self.spec.uses_with,
                       uses_metas=self.uses_metas if is_yaml else self.spec.metas, port=port,
                       replica_id=replica_id, shard_id=shard_id, host=self._worker_host,
                       port_monitoring=self._monitoring_ports[index] if self._monitoring_ports else None)

    def worker_processes(self) -> list[ServiceProcess]:
        if self.external:
            return []  # served elsewhere: the Flow's gateway only reaches it
        uses = self._uses_arg()
        processes = []
        for shard_id, ports in enumerate(self.worker_ports):
            for replica_id, port in enumerate(ports):
                config = self.worker_config(shard_id, replica_id, port, uses)
                label = f'{self.name}/rep-{replica_id}' + (f'/shard-{shard_id}' if self.shards > 1 else '')
                processes.append(ServiceProcess(label, WORKER_MODULE, ['--config-json', _config_json(config)],
                                                env=self._worker_env(replica_id), echo=not self.quiet))
        for side, spec in self.around.items():
            config = replace(self.worker, uses=class_reference(spec.cls), uses_with=spec.uses_with,
                             uses_metas=spec.metas, uses_requests=None, uses_dynamic_batching=None,
                             name=f'{self.name}/{side}', port=self._around_ports[side], replica_id=0, shard_id=0,
                             replicas=1, shards=1, host=self._worker_host, port_monitoring=None)
            processes.append(ServiceProcess(f'{self.name}/{side}', WORKER_MODULE,
                                            ['--config-json', _config_json(config)], env=self._worker_env(0),
                                            echo=not self.quiet))
        return processes

    def target(self) -> DeploymentTarget:
        """This deployment as a gateway routes to it."""
        shards = [self.external_addresses] if self.external else \
            [[f'{LOCAL_HOST}:{p}' for p in ports] for ports in self.worker_ports]
        return DeploymentTarget(name=self.name, shards=shards, needs=self.needs or [START], polling=self.polling,
                                when=self.when, timeout_send=self.timeout_send, floating=self.floating,
                                external=self.external, tls=self.tls, grpc_metadata=self.grpc_metadata,
                                no_reduce=self.no_reduce, **self.around_addresses)

    def gateway_config(self) -> GatewayConfig:
        """The gateway in front of the replicas (when there is one)."""
        options = {'grace': self.grace, **self.gateway_options, 'name': 'gateway', 'host': self.host,
                   'port_monitoring': self._monitoring_ports[-1] if self._monitoring_ports else None}
        return GatewayConfig(protocols=self.protocols, ports=self.ports, deployments=[self.target()], **options)

    def _gateway_process(self) -> ServiceProcess:
        config = self.gateway_config()
        return ServiceProcess('gateway', GATEWAY_MODULE, ['--config-json', config.to_json()], echo=not self.quiet,
                              env=gateway_env({}, self.auth_tokens, self._secret))

    # -- what Orchestration needs ------------------------------------------------------------
    def _processes(self) -> list[ServiceProcess]:
        if self.external:
            raise BadConfig(f'{self.name}: external=True adds an executor served elsewhere to a Flow; a '
                            'Deployment on its own has nothing to start (use a Client on its address)')
        if self.floating:
            raise BadConfig(f'{self.name}: floating=True applies to a deployment in a Flow, whose gateway does '
                            'not wait for it; a Deployment on its own answers every request')
        processes = self.worker_processes()
        if self._with_gateway:
            processes.append(self._gateway_process())
        return processes

    def _public(self) -> list[tuple[str, int]]:
        return list(zip(self.protocols, self.ports))

    @property
    def _tls(self) -> bool:  # type: ignore[override]
        return bool(self.gateway_options.get('ssl_certfile'))

    def _grace(self) -> float:
        return self.grace

    # -- talking to it -----------------------------------------------------------------------
    def is_deployment_ready(self, timeout: float = 3.0) -> bool:
        return self._ready('deployment', timeout)

    @property
    def monitoring_ports(self) -> dict[str, int]:
        """Where each process serves Prometheus metrics (monitoring=True): label -> port."""
        ports = self.replica_monitoring_ports()
        if ports and self._with_gateway:
            ports['gateway'] = self._monitoring_ports[-1]
        return ports

    def replica_monitoring_ports(self) -> dict[str, int]:
        return {p.label: port for p, port in zip(self.worker_processes(), self._monitoring_ports)}

    @property
    def addresses(self) -> list[str]:
        return [f'{LOCAL_HOST}:{p}' for ports in self.worker_ports for p in ports]

    # -- export ------------------------------------------------------------------------------
    def to_kubernetes_yaml(self, output_base_path: str, k8s_namespace: Optional[str] = None,
                           image: Optional[str] = None) -> list[str]:
        """Write Kubernetes manifests for this Deployment (its gateway and each executor shard),
        a Dockerfile and a README under `output_base_path`; returns the paths written."""
        from plait.orchestrate.export.kubernetes import export_kubernetes

        return export_kubernetes(_AsFlow(self), output_base_path, k8s_namespace, image)

    def to_docker_compose_yaml(self, output_path: str = 'docker-compose.yml', network_name: Optional[str] = None,
                               image: Optional[str] = None) -> list[str]:
        """Write a docker-compose file for this Deployment (its gateway and each replica) and the
        Dockerfile beside it; returns the paths written."""
        from plait.orchestrate.export.compose import export_docker_compose

        return export_docker_compose(_AsFlow(self), output_path, network_name, image)


class _AsFlow:
    """A Deployment as the exporters take a Flow: one deployment behind a gateway that serves
    its protocols and ports (in containers the replicas are reached through it)."""

    def __init__(self, deployment: Deployment):
        self.deployments = {deployment.name: deployment}
        self.protocols, self.ports = deployment.protocols, deployment.ports
        self._init_args = {'port': deployment.ports if deployment._ports_given else None, 'name': deployment.name}
        self.env, self.timeout_ready = deployment.env, deployment.timeout_ready
        self.gateway_config = deployment.gateway_config
        self.auth_tokens = deployment.auth_tokens
