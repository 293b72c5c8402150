"""The configuration of one Executor replica process, written once: Deployment sends it to the
process as JSON (`--config-json`), `plait executor` builds it from flags derived from its
fields, and Deployment/Flow.add accept its fields as options (see plait.orchestrate.options).

A new worker option is one field here (with its default and a `help`); it is then a
Deployment and Flow.add keyword, a YAML key and a `plait executor` flag."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# fields the Deployment fills in per process, not options a user gives
PER_PROCESS = ('port', 'replica_id', 'shard_id', 'port_monitoring')


def _help(text: str) -> dict[str, str]:
    return {'help': text}


@dataclass
class WorkerConfig:
    uses: str = field(default='plait.executor:NoOpExecutor', metadata=_help(
        "Executor class as 'module:Class', a registered class name, or a YAML file"))
    uses_with: dict[str, Any] = field(default_factory=dict, metadata=_help('constructor arguments'))
    uses_metas: dict[str, Any] = field(default_factory=dict, metadata=_help('metas (name, workspace...)'))
    uses_requests: Optional[dict[str, str]] = field(default=None, metadata=_help('endpoint -> method name'))
    uses_dynamic_batching: Optional[dict[str, Any]] = field(default=None, metadata=_help(
        'endpoint or method name -> dynamic batching options'))
    name: str = field(default='executor', metadata=_help('the deployment name, in logs and errors'))
    host: str = field(default='0.0.0.0', metadata=_help('address to listen on'))
    port: int = field(default=0, metadata=_help('port to listen on'))
    replica_id: int = 0
    shard_id: int = 0
    replicas: int = field(default=1, metadata=_help('copies of the Executor'))
    shards: int = field(default=1, metadata=_help('partitions of the Executor'))
    workspace: Optional[str] = field(default=None, metadata=_help('folder the Executor keeps its data in'))
    grace: float = field(default=10.0, metadata=_help('seconds in-flight requests get to finish on SIGTERM'))
    allow_concurrent: bool = field(default=False, metadata=_help(
        'run sync methods of one replica concurrently'))
    # observability (plait.observability): Jina's option names
    monitoring: bool = field(default=False, metadata=_help('serve Prometheus metrics on port_monitoring'))
    port_monitoring: Optional[int] = field(default=None, metadata=_help('port of the Prometheus metrics'))
    tracing: bool = field(default=False, metadata=_help('export OpenTelemetry spans over OTLP/gRPC'))
    traces_exporter_host: Optional[str] = field(default=None, metadata=_help('OTLP collector host (localhost)'))
    traces_exporter_port: Optional[int] = field(default=None, metadata=_help('OTLP collector port (4317)'))
    metrics: bool = field(default=False, metadata=_help('export OpenTelemetry metrics over OTLP/gRPC'))
    metrics_exporter_host: Optional[str] = field(default=None, metadata=_help('OTLP collector host (localhost)'))
    metrics_exporter_port: Optional[int] = field(default=None, metadata=_help('OTLP collector port (4317)'))

    @property
    def runtime_name(self) -> str:
        """This replica in logs, metrics and traces: executor0/rep-1 (executor0/shard-0/rep-1)."""
        shard = f'/shard-{self.shard_id}' if self.shards > 1 else ''
        return f'{self.name}{shard}/rep-{self.replica_id}'
