"""Deployment: one Executor served as replicas x shards, each replica its own process. One
replica of one shard listens on `port` itself; otherwise a gateway on `port` balances over
replicas and fans out to shards."""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from plait.errors import BadConfig
from plait.logs import get_logger
from plait.orchestrate.orchestration import LOCAL_HOST, Orchestration
from plait.wire.ports import free_port
from plait.orchestrate.process import ServiceProcess
from plait.serve.gateway.config import START, DeploymentTarget, GatewayConfig
from plait.uses import class_reference, resolve_uses

WORKER_MODULE = 'plait.serve.worker'
GATEWAY_MODULE = 'plait.serve.gateway.runtime'


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value or {})
    except TypeError as e:
        raise BadConfig(f'{what} must be JSON-serialisable (it is sent to another process): {e}') from None


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


class Deployment(Orchestration):
    """One Executor as replicas x shards; `with Deployment(uses=MyExecutor, port=12345): ...`."""

    kind = 'Deployment'

    def __init__(self, uses: Any = None, uses_with: Optional[dict] = None, uses_metas: Optional[dict] = None,
                 uses_requests: Optional[dict] = None, uses_dynamic_batching: Optional[dict] = None,
                 name: str = 'executor', port: Optional[int] = None,
                 host: str = '0.0.0.0', replicas: int = 1, shards: int = 1,
                 polling: Union[str, dict, None] = 'ANY', timeout_ready: int = 600000,
                 timeout_send: Optional[int] = None, retries: int = -1, workspace: Optional[str] = None,
                 env: Optional[dict[str, str]] = None, grace: float = 10.0, allow_concurrent: bool = False,
                 protocol: str = 'grpc', needs: Union[str, list[str], None] = None,
                 when: Optional[dict] = None, compression: Optional[str] = None, prefetch: int = 1000,
                 quiet: bool = False, restart: bool = True, **unknown: Any):
        if unknown:
            get_logger('Deployment').warning('ignoring unknown option(s) %s', sorted(unknown))
        if replicas < 1 or shards < 1:
            raise BadConfig(f'{name}: replicas and shards must be >= 1 (got {replicas} and {shards})')
        self.spec = resolve_uses(uses, uses_with, uses_metas)  # fails early, in the user's process
        self.uses = uses
        self.uses_with = uses_with or {}
        self.uses_metas = uses_metas or {}
        self.uses_requests = uses_requests
        self.uses_dynamic_batching = uses_dynamic_batching
        if uses_dynamic_batching is not None and not isinstance(uses_dynamic_batching, dict):
            raise BadConfig(f'{name}: uses_dynamic_batching takes a dict of endpoint -> options, '
                            f'got {uses_dynamic_batching!r}')
        if uses_dynamic_batching or self.spec.dynamic_batching or self.spec.cls.dynamic_batching:
            from plait.serve.batching import check_executor_class, merge_options

            check_executor_class(self.spec.cls, uses_requests or self.spec.requests,
                                 merge_options(self.spec.dynamic_batching or {}, uses_dynamic_batching), name)
        self.name = name
        self.host = host
        self.replicas = replicas
        self.shards = shards
        self.polling = normalize_polling(polling)
        self.timeout_ready = timeout_ready
        self.timeout_send = timeout_send
        self.retries = retries
        self.workspace = workspace
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.grace = grace
        self.allow_concurrent = allow_concurrent
        self.protocol = protocol
        self.needs = [needs] if isinstance(needs, str) else list(needs or [])
        self.when = _checked_when(name, when)
        self.compression = compression
        self.prefetch = prefetch
        self.quiet = quiet
        self.restart = restart
        self.port = port if port is not None else free_port()
        self._with_gateway = replicas > 1 or shards > 1
        # replica ports: [shard][replica]
        self.worker_ports = ([[self.port]] if not self._with_gateway
                             else [[free_port() for _ in range(replicas)] for _ in range(shards)])
        self._host = host
        self._init_orchestration()

    # -- what to run -------------------------------------------------------------------------
    def _uses_arg(self) -> str:
        if isinstance(self.uses, str) and self.uses.endswith(('.yml', '.yaml')):
            return self.uses
        return class_reference(self.spec.cls)

    def worker_processes(self) -> list[ServiceProcess]:
        uses = self._uses_arg()
        is_yaml = uses.endswith(('.yml', '.yaml'))
        uses_with = self.uses_with if is_yaml else self.spec.uses_with
        metas = self.uses_metas if is_yaml else self.spec.metas
        processes = []
        for shard_id, ports in enumerate(self.worker_ports):
            for replica_id, port in enumerate(ports):
                args = ['--uses', uses, '--uses-with', _json(uses_with, 'uses_with'),
                        '--uses-metas', _json(metas, 'uses_metas'), '--name', self.name,
                        '--host', self.host, '--port', str(port), '--replica-id', str(replica_id),
                        '--shard-id', str(shard_id), '--replicas', str(self.replicas),
                        '--shards', str(self.shards), '--grace', str(self.grace)]
                if self.uses_requests:
                    args += ['--uses-requests', _json(self.uses_requests, 'uses_requests')]
                if self.uses_dynamic_batching:
                    args += ['--uses-dynamic-batching', _json(self.uses_dynamic_batching, 'uses_dynamic_batching')]
                if self.workspace:
                    args += ['--workspace', self.workspace]
                if self.allow_concurrent:
                    args.append('--allow-concurrent')
                label = f'{self.name}/rep-{replica_id}' + (f'/shard-{shard_id}' if self.shards > 1 else '')
                processes.append(ServiceProcess(label, WORKER_MODULE, args, env=self.env, echo=not self.quiet))
        return processes

    def target(self) -> DeploymentTarget:
        """This deployment as a gateway routes to it."""
        return DeploymentTarget(name=self.name, shards=[[f'{LOCAL_HOST}:{p}' for p in ports]
                                                        for ports in self.worker_ports],
                                needs=self.needs or [START], polling=self.polling, when=self.when,
                                timeout_send=self.timeout_send)

    def _gateway_process(self) -> ServiceProcess:
        config = GatewayConfig(name='gateway', host=self.host, protocols=[self.protocol], ports=[self.port],
                               deployments=[self.target()], timeout_send=self.timeout_send,
                               retries=self.retries, compression=self.compression, prefetch=self.prefetch,
                               grace=self.grace)
        return ServiceProcess('gateway', GATEWAY_MODULE, ['--config-json', config.to_json()], echo=not self.quiet)

    # -- what Orchestration needs ------------------------------------------------------------
    def _processes(self) -> list[ServiceProcess]:
        processes = self.worker_processes()
        if self._with_gateway:
            processes.append(self._gateway_process())
        return processes

    def _public(self) -> list[tuple[str, int]]:
        return [(self.protocol, self.port)]

    def _grace(self) -> float:
        return self.grace

    # -- talking to it -----------------------------------------------------------------------
    def is_deployment_ready(self, timeout: float = 3.0) -> bool:
        return self._ready('deployment', timeout)

    @property
    def addresses(self) -> list[str]:
        return [f'{LOCAL_HOST}:{p}' for ports in self.worker_ports for p in ports]
