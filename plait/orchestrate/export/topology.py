"""A Flow as containers see it: one Service per executor shard (Kubernetes) or per replica
of a shard (docker-compose) plus the gateway, each with its host name, `plait` arguments,
ports and health checks. Both exporters render this one description, so the commands, the
addresses the gateway is told and the probes are worked out once."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Literal, Optional

from plait.config import to_arguments
from plait.errors import BadConfig
from plait.orchestrate.export.sources import ExportedUses, collect_sources, exportable_uses

Mode = Literal['kubernetes', 'compose']
EXECUTOR_PORT = 8080           # every executor container listens here (each has its own address)
FIRST_GATEWAY_PORT = 8080      # gateway ports when the Flow gave none: 8080, 8081, ... per protocol
DEFAULT_IMAGE = 'plait-flow:latest'
MONITORING_PORT = 9090         # where every container serves Prometheus metrics (monitoring=True), as in Jina
PRESTOP_SECONDS = 2            # time for a terminating pod to leave its Service before SIGTERM
FOREVER_STARTUP_SECONDS = 3600  # how long "timeout_ready=-1" lets a container start in an export
# gateway options the `plait gateway` command has a flag for; the others travel in --config-json
_GATEWAY_FLAGS = {'timeout_send': '--timeout-send', 'compression': '--compression', 'prefetch': '--prefetch',
                  'ssl_certfile': '--ssl-certfile', 'ssl_keyfile': '--ssl-keyfile'}
# worker fields every executor command shows, even at their defaults
_EXECUTOR_ALWAYS = ('uses', 'name', 'host', 'port', 'replica_id', 'shard_id', 'replicas', 'shards', 'grace')
# gateway fields the command line sets from the container's own layout (a token file is mounted
# from a Secret at a path of the container's own)
_GATEWAY_LAYOUT = ('name', 'host', 'protocols', 'ports', 'deployments', 'cors', 'auth_token_file')
# secrets an exported Flow references, what each is, and the key its value is under
EXECUTOR_SECRET = 'executor-secret'   # shared by the gateway and its executors (plait.auth)
AUTH_TOKEN = 'auth-token'             # what callers must send to the gateway
SECRET_KEYS = {EXECUTOR_SECRET: 'secret', AUTH_TOKEN: 'token'}


@dataclass(frozen=True)
class Port:
    name: str    # grpc, http or websocket (also the Kubernetes port name)
    number: int


@dataclass(frozen=True)
class Health:
    """How to check a container: over gRPC health (service names) or HTTP (paths)."""

    scheme: Literal['grpc', 'http']
    port: int
    live: str         # liveness and startup: gRPC service or HTTP path
    ready: str        # readiness: gRPC service or HTTP path
    ping_kind: str    # what `plait ping` checks for readiness: 'executor' or 'flow'
    tls: bool = False
    tls_ca: Optional[str] = None

    def ping_command(self) -> list[str]:
        """`plait ping ...` run inside the container itself: exit 0 when ready."""
        scheme = self.scheme + ('s' if self.tls else '')
        command = ['plait', 'ping', self.ping_kind, f'{scheme}://127.0.0.1:{self.port}', '--timeout', '3000']
        if self.tls and self.tls_ca:
            command += ['--tls-ca', self.tls_ca]
        return command


@dataclass
class Service:
    """One microservice as a container runs it."""

    name: str                      # host name: Kubernetes Service / compose service
    role: Literal['executor', 'gateway']
    deployment: str                # the Flow's name for it ('gateway' for the gateway)
    args: list[str]                # arguments of the `plait` command
    ports: list[Port]
    health: Health
    env: dict[str, str]
    replicas: int                  # identical copies behind `name` (always 1 in compose)
    grace: float                   # seconds the process drains in-flight requests on SIGTERM
    startup_seconds: float         # how long it may take to become ready (timeout_ready)
    needs: list[str] = field(default_factory=list)  # services that must be healthy first
    monitoring_port: Optional[int] = None  # Prometheus metrics (monitoring=True)
    secrets: tuple[str, ...] = ()  # which of SECRETS it is given (by reference, never by value)

    @property
    def termination_seconds(self) -> int:
        """Seconds between SIGTERM (after preStop) and SIGKILL: drain grace plus a margin."""
        return int(PRESTOP_SECONDS + self.grace + 5 + 0.999)


@dataclass
class Topology:
    flow_name: str
    image: str
    services: list[Service]
    sources: dict[str, str]        # module name -> file or package folder to copy into the image
    installed: dict[str, str]      # module name -> where it is installed here (the image must install it)

    def secret_name(self, kind: str) -> str:
        """The name of the Secret holding `kind` (EXECUTOR_SECRET or AUTH_TOKEN)."""
        return f'{self.flow_name}-{kind}'

    @property
    def secrets(self) -> list[str]:
        """The kinds of secret some service of this Flow references."""
        return [kind for kind in SECRET_KEYS if any(kind in s.secrets for s in self.services)]

    @property
    def executors(self) -> list[Service]:
        return [s for s in self.services if s.role == 'executor']

    @property
    def gateway(self) -> Service:
        return next(s for s in self.services if s.role == 'gateway')


def dns_label(text: str, limit: int = 63) -> str:
    """`text` as an RFC 1035 label (lowercase letters, digits, '-'; starts with a letter)."""
    label = re.sub(r'[^a-z0-9-]+', '-', text.lower()).strip('-')
    label = re.sub(r'-{2,}', '-', label)
    if not label or not label[0].isalpha():
        label = 'x-' + label
    return label[:limit].rstrip('-')


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except TypeError as e:
        raise BadConfig(f'{what} must be JSON-serialisable to be exported: {e}') from None


def _startup_seconds(timeout_ready_ms: Optional[int]) -> float:
    if timeout_ready_ms is None or timeout_ready_ms < 0:
        return FOREVER_STARTUP_SECONDS
    return max(timeout_ready_ms / 1000, 10.0)


def _executor_args(deployment: Any, uses: ExportedUses, shard: int, replica: int) -> list[str]:
    """`plait executor` flags for one replica: the Deployment's worker config, as a container runs it."""
    config = replace(deployment.worker_config(shard, replica, EXECUTOR_PORT, uses.uses), host='0.0.0.0',
                     uses_with=uses.uses_with, uses_metas=uses.metas, uses_requests=uses.requests,
                     uses_dynamic_batching=uses.dynamic_batching,
                     port_monitoring=MONITORING_PORT if deployment.worker.monitoring else None)
    _json(asdict(config), f'{deployment.name}: uses_with, uses_metas, uses_requests and uses_dynamic_batching')
    return ['executor', *to_arguments(config, always=_EXECUTOR_ALWAYS)]


def _executor_services(deployment: Any, base: str, mode: Mode) -> list[list[Service]]:
    """Services of one deployment, [shard][replica]; in Kubernetes one per shard."""
    uses = exportable_uses(deployment)
    shards = []
    for shard in range(deployment.shards):
        shard_name = base if deployment.shards == 1 else f'{base}-shard-{shard}'
        copies = 1 if mode == 'kubernetes' else deployment.replicas
        row = []
        for replica in range(copies):
            name = shard_name if copies == 1 else f'{shard_name}-rep-{replica}'
            row.append(Service(
                name=name, role='executor', deployment=deployment.name,
                args=_executor_args(deployment, uses, shard, replica),
                ports=[Port('grpc', EXECUTOR_PORT)],
                health=Health('grpc', EXECUTOR_PORT, live='', ready='', ping_kind='executor'),
                env=dict(deployment.env), replicas=deployment.replicas if mode == 'kubernetes' else 1,
                grace=float(deployment.grace), startup_seconds=_startup_seconds(deployment.timeout_ready),
                monitoring_port=MONITORING_PORT if deployment.worker.monitoring else None,
                secrets=(EXECUTOR_SECRET,)))
        shards.append(row)
    return shards


def _gateway_ports(flow: Any) -> list[Port]:
    given = flow._init_args.get('port')
    if given is not None:
        numbers = list(flow.ports)
    else:
        numbers = [FIRST_GATEWAY_PORT + i for i in range(len(flow.protocols))]
    return [Port(p, n) for p, n in zip(flow.protocols, numbers, strict=True)]


def _gateway_health(ports: list[Port], config: Any) -> Health:
    tls = bool(config.ssl_certfile)
    grpc_port = next((p.number for p in ports if p.name == 'grpc'), None)
    if grpc_port is not None:
        return Health('grpc', grpc_port, live='', ready='readiness', ping_kind='flow', tls=tls,
                      tls_ca=config.ssl_certfile)
    return Health('http', ports[0].number, live='/livez', ready='/readyz', ping_kind='flow', tls=tls,
                  tls_ca=config.ssl_certfile)


def _gateway_args(flow: Any, ports: list[Port], targets: list[dict[str, Any]]) -> list[str]:
    config = _exported_gateway_config(flow)
    args = ['gateway', '--name', 'gateway', '--host', '0.0.0.0',
            '--protocol', *[p.name for p in ports], '--port', *[str(p.number) for p in ports],
            '--deployments', _json(targets, 'the gateway graph')]
    defaults = type(config)()
    for key, flag in _GATEWAY_FLAGS.items():
        value = getattr(config, key)
        if value is not None and value != getattr(defaults, key):
            args += [flag, str(value)]
    if config.cors:
        args.append('--cors')
    extra = {f.name: getattr(config, f.name) for f in fields(config)
             if f.name not in _GATEWAY_FLAGS and f.name not in _GATEWAY_LAYOUT
             and getattr(config, f.name) != getattr(defaults, f.name)}
    if extra:
        args += ['--config-json', _json(extra, 'gateway options')]
    return args


def _exported_gateway_config(flow: Any) -> Any:
    """The Flow's gateway config as its container runs it (metrics on MONITORING_PORT)."""
    config = flow.gateway_config()
    return replace(config, port_monitoring=MONITORING_PORT) if config.monitoring else config


def _target(deployment: Any, addresses: list[list[str]]) -> dict[str, Any]:
    """What the gateway's --deployments says about one deployment (defaults left out)."""
    target = asdict(deployment.target())
    target.pop('shards')
    item: dict[str, Any] = {'name': target.pop('name')}
    if len(addresses) == 1:
        item['addresses'] = addresses[0]
    else:
        item['shards'] = addresses
    item['needs'] = target.pop('needs')
    if target['polling'] != {'*': 'ANY'}:
        item['polling'] = target['polling']
    for key in ('when', 'timeout_send'):
        if target[key] is not None:
            item[key] = target[key]
    return item


def build_topology(flow: Any, mode: Mode, address: Callable[[str, int], str],
                   image: Optional[str] = None) -> Topology:
    """Describe `flow` for `mode`; `address(service_name, port)` is how the gateway reaches a service."""
    services: list[Service] = []
    targets: list[dict[str, Any]] = []
    taken: dict[str, str] = {'gateway': 'the gateway'}
    for deployment in flow.deployments.values():
        base = dns_label(deployment.name, limit=40)
        if base in taken:
            raise BadConfig(f'deployments {taken[base]!r} and {deployment.name!r} both become the host name '
                            f'{base!r} when exported; rename one')
        taken[base] = deployment.name
        grid = _executor_services(deployment, base, mode)
        targets.append(_target(deployment, [[address(s.name, EXECUTOR_PORT) for s in row] for row in grid]))
        services.extend(s for row in grid for s in row)
    ports = _gateway_ports(flow)
    config = flow.gateway_config()
    services.append(Service(
        name='gateway', role='gateway', deployment='gateway', args=_gateway_args(flow, ports, targets),
        ports=ports, health=_gateway_health(ports, config), env={k: str(v) for k, v in flow.env.items()},
        replicas=1, grace=float(config.grace), startup_seconds=_startup_seconds(flow.timeout_ready),
        needs=[s.name for s in services], monitoring_port=MONITORING_PORT if config.monitoring else None,
        secrets=(EXECUTOR_SECRET,) + ((AUTH_TOKEN,) if flow.auth_tokens else ())))
    sources, installed = collect_sources(flow)
    name = dns_label(str(flow._init_args.get('name') or 'plait-flow'))
    return Topology(flow_name=name, image=image or DEFAULT_IMAGE, services=services, sources=sources,
                    installed=installed)
