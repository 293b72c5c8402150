"""The gateway's configuration: the graph it routes through and the options of each protocol.
Passed to the gateway process as one JSON document."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from plait.errors import BadConfig

START = 'gateway'  # the name `needs` uses for the gateway's own input
END = 'end-gateway'


@dataclass
class DeploymentTarget:
    """One deployment as the gateway sees it: replica addresses per shard, its predecessors,
    and how shards are polled (per endpoint, '*' for the rest)."""

    name: str
    shards: list[list[str]]
    needs: list[str] = field(default_factory=lambda: [START])
    polling: dict[str, str] = field(default_factory=lambda: {'*': 'ANY'})
    when: Optional[dict[str, Any]] = None
    timeout_send: Optional[int] = None  # ms; None = the gateway's default
    floating: bool = False              # fed its needs' output, never waited for: its answer is dropped
    external: bool = False              # served elsewhere: reached at `shards`, not started by the Flow
    tls: bool = False                   # reach its replicas over TLS (external executors)
    grpc_metadata: Optional[dict[str, str]] = None  # sent with every call to it (external executors)
    uses_before_address: Optional[str] = None  # an executor each request passes before the shards
    uses_after_address: Optional[str] = None   # the executor that gets every shard's answer (docs_matrix)
    no_reduce: bool = False             # its predecessors' answers reach it as they are (docs_matrix), unmerged

    def polling_for(self, endpoint: str) -> str:
        return self.polling.get(endpoint, self.polling.get('*', 'ANY')).upper()

    def addresses(self) -> list[str]:
        return [a for shard in self.shards for a in shard]


# expose_endpoint(...) keywords an HTTP route takes (as Jina passes them to FastAPI), and `methods`
ROUTE_OPTIONS = ('methods', 'summary', 'description', 'tags', 'name', 'deprecated', 'response_description',
                 'operation_id', 'include_in_schema')


def check_route_options(endpoint: str, options: Any) -> dict[str, Any]:
    """The options of one exposed endpoint, or BadConfig naming what plait does not take."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise BadConfig(f'expose_endpoints[{endpoint!r}]: expected a mapping of route options, got {options!r}')
    unknown = sorted(set(options) - set(ROUTE_OPTIONS))
    if unknown:
        raise BadConfig(f'expose_endpoint {endpoint}: not supported by plait: {", ".join(unknown)} '
                        f'(route options: {", ".join(ROUTE_OPTIONS)})')
    return dict(options)


@dataclass
class GatewayConfig:
    name: str = 'gateway'
    host: str = '0.0.0.0'
    protocols: list[str] = field(default_factory=lambda: ['grpc'])
    ports: list[int] = field(default_factory=list)
    deployments: list[DeploymentTarget] = field(default_factory=list)
    timeout_send: Optional[int] = None      # ms per executor call; None = no limit
    retries: int = -1                       # -1 = max(3, replicas) + 1 tries
    compression: Optional[str] = None       # to executors: none, gzip, deflate
    prefetch: int = 1000                    # per client stream; 0 = unlimited
    ssl_certfile: Optional[str] = None
    ssl_keyfile: Optional[str] = None
    grace: float = 10.0
    # callers must send one of the tokens in this file (one per line; also $PLAIT_AUTH_TOKEN,
    # $PLAIT_AUTH_TOKEN_FILE, or Flow(auth_token=...)); never a token itself: this config is no secret
    auth_token_file: Optional[str] = None
    public_docs: bool = False               # /docs and /openapi.json answer without a token
    # http / websocket
    cors: bool = False
    title: Optional[str] = None
    description: Optional[str] = None
    no_debug_endpoints: bool = False
    no_crud_endpoints: bool = False
    expose_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    expose_graphql_endpoint: bool = False
    uvicorn_kwargs: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 100 * 1024 * 1024
    # observability (plait.observability): Jina's option names
    monitoring: bool = False                # Prometheus metrics on port_monitoring (and HTTP /metrics)
    port_monitoring: Optional[int] = None
    tracing: bool = False                   # OpenTelemetry spans over OTLP/gRPC
    traces_exporter_host: Optional[str] = None
    traces_exporter_port: Optional[int] = None
    metrics: bool = False                   # OpenTelemetry metrics over OTLP/gRPC
    metrics_exporter_host: Optional[str] = None
    metrics_exporter_port: Optional[int] = None

    def __post_init__(self) -> None:
        self.expose_endpoints = {endpoint: check_route_options(endpoint, options)
                                 for endpoint, options in (self.expose_endpoints or {}).items()}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> 'GatewayConfig':
        raw = json.loads(text)
        raw['deployments'] = [DeploymentTarget(**d) for d in raw.get('deployments', [])]
        return cls(**raw)
