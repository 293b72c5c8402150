"""The gateway process: builds the GatewayCore, serves each protocol on its port, keeps the
`readiness` health service in step with the live view, and drains on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any, Optional

from plait.logs import get_logger
from plait.observability import ObservabilityConfig
from plait.serve.gateway.config import DeploymentTarget, GatewayConfig
from plait.serve.gateway.core import GatewayCore
from plait.serve import event_loop
from plait.serve.grpc_server import NOT_SERVING, SERVING, start_grpc_server
from plait.serve.lifecycle import Lifecycle, State, exit_when_parent_dies, signal_ready

READINESS = 'readiness'


class GatewayRuntime:
    def __init__(self, config: GatewayConfig, tokens: tuple[str, ...] = (), executor_secret: Optional[str] = None,
                 token_file: Optional[str] = None):
        """`tokens`: what callers must send (none: open), read anew from `token_file` when it
        changes; `executor_secret`: what this gateway sends its executors."""
        from plait import auth

        self.config = config
        self.logger = get_logger(f'{config.name}/rep-0')
        address = ', '.join(f'{p}://{config.host}:{port}' for p, port in zip(config.protocols, config.ports))
        self.lifecycle = Lifecycle(self.logger, address)
        self.core = GatewayCore(config, self.logger, credentials=auth.credentials_metadata(executor_secret))
        self.observer: Any = None
        observability = ObservabilityConfig.of(config)
        if observability.enabled:
            from plait.observability.observers import GatewayObserver

            self.observer = GatewayObserver(observability, config.name, self.logger)
            self.core.observe(self.observer)
        self.token_check = auth.TokenCheck(tokens) if tokens else None
        self._token_file = token_file if tokens else None
        if tokens:
            auth.warn_if_plaintext(config.host, bool(config.ssl_certfile), self.logger)
        self._stop = asyncio.Event()
        self._healths: list[Any] = []
        self._graph_ready = asyncio.Event()

    def _on_readiness(self, ready: bool) -> None:
        for health in self._healths:
            asyncio.ensure_future(health.set(READINESS, SERVING if ready else NOT_SERVING))
        if ready:
            self._graph_ready.set()
        else:
            self._graph_ready.clear()
        self.logger.info('Flow is %s', 'ready' if ready else 'not ready: ' + '; '.join(
            f"{r['deployment']} replica {r['replica']} at {r['address']} ({r['reason']})"
            for r in self.core.not_ready()))

    async def _start_servers(self) -> list[Any]:
        from plait.serve.gateway.grpc_gateway import GrpcGateway

        servers: list[Any] = []
        cfg = self.config
        for protocol, port in zip(cfg.protocols, cfg.ports):
            if protocol == 'grpc':
                grpc_gateway = GrpcGateway(self.core, cfg.prefetch)
                server, health = await start_grpc_server(cfg.host, port, grpc_gateway.services(),
                                                         cfg.ssl_certfile, cfg.ssl_keyfile,
                                                         interceptors=self._interceptors())
                await health.set('', SERVING)  # liveness: the gateway process is up
                await health.set(READINESS, SERVING if self.core.ready() else NOT_SERVING)
                self._healths.append(health)
                servers.append(('grpc', server))
            elif protocol in ('http', 'websocket'):
                from plait.serve.gateway.http import HttpServer

                http_server = HttpServer(self.core, cfg, port, websocket=(protocol == 'websocket'),
                                         token_check=self.token_check)
                await http_server.start()
                servers.append((protocol, http_server))
            else:
                raise ValueError(f'unknown protocol {protocol!r}: use grpc, http or websocket')
            self.logger.debug('start server bound to %s:%s (%s)', cfg.host, port, protocol)
        return servers

    def _interceptors(self) -> list[Any]:
        if self.token_check is None:
            return []
        from plait.auth import grpc_interceptor

        return [grpc_interceptor(self.token_check)]

    async def run(self, ready_fd: Optional[int] = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.core.on_readiness(self._on_readiness)
        self.core.start()
        servers = await self._start_servers()
        if self.observer is not None:
            self.observer.serve_metrics(self.config.host, self.core.replica_states)
        watch_parent = asyncio.ensure_future(exit_when_parent_dies(self._stop))
        if self._token_file and self.token_check is not None:
            from plait.auth import follow_token_file

            follow = asyncio.ensure_future(follow_token_file(self._token_file, self.token_check, self.logger))
            watch_parent.add_done_callback(lambda _: follow.cancel())
        # Locally, tell the parent only once every replica is SERVING and endpoints are known,
        # so that `with Flow()` returns with the Flow ready.
        if self.config.deployments:
            ready_or_stop = [asyncio.ensure_future(self._graph_ready.wait()), asyncio.ensure_future(self._stop.wait())]
            await asyncio.wait(ready_or_stop, return_when=asyncio.FIRST_COMPLETED)
            for f in ready_or_stop:
                f.cancel()
            await self.core.discover()
        if not self._stop.is_set():
            self.lifecycle.move_to(State.READY)
            signal_ready(ready_fd)
            await self._stop.wait()
        watch_parent.cancel()
        self.lifecycle.move_to(State.DRAINING)
        for health in self._healths:
            await health.enter_graceful_shutdown()
        await asyncio.gather(*(self._stop_server(kind, s) for kind, s in servers), return_exceptions=True)
        await self.core.close()
        if self.observer is not None:
            self.observer.close()
        self.lifecycle.move_to(State.STOPPED)
        return 0

    async def _stop_server(self, kind: str, server: Any) -> None:
        if kind == 'grpc':
            await server.stop(self.config.grace)
        else:
            await server.stop()


def _parse_deployments(text: str) -> list[DeploymentTarget]:
    """`[{"name": "executor0", "shards": [["127.0.0.1:12346"]], "needs": ["gateway"]}, ...]`;
    `"addresses": [...]` may stand for a single shard."""
    raw = json.loads(text)
    targets = []
    for item in raw:
        if 'addresses' in item:
            item['shards'] = [item.pop('addresses')]
        targets.append(DeploymentTarget(**item))
    return targets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='plait gateway',
                                     description='Serve a Gateway in front of running executors.')
    parser.add_argument('--config-json', help='the whole GatewayConfig as JSON (what Flow passes)')
    parser.add_argument('--name', default=None)
    parser.add_argument('--host', default=None)
    parser.add_argument('--protocol', nargs='+', default=None, help='grpc, http and/or websocket')
    parser.add_argument('--port', nargs='+', type=int, default=None)
    parser.add_argument('--deployments', default=None,
                        help='JSON list of {"name", "addresses" or "shards", "needs", "polling"}')
    parser.add_argument('--timeout-send', type=int, default=None, help='ms per executor call')
    parser.add_argument('--compression', default=None, choices=['none', 'gzip', 'deflate'])
    parser.add_argument('--prefetch', type=int, default=None)
    parser.add_argument('--ssl-certfile', default=None)
    parser.add_argument('--ssl-keyfile', default=None)
    parser.add_argument('--cors', action='store_true', default=None)
    parser.add_argument('--auth-token-file', default=None, metavar='FILE',
                        help='callers must send one of the tokens in FILE (one per line); '
                             'also $PLAIT_AUTH_TOKEN, $PLAIT_AUTH_TOKEN_FILE')
    parser.add_argument('--public-docs', action='store_true', default=None,
                        help='/docs and /openapi.json answer without a token')
    return parser


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    config = GatewayConfig.from_json(args.config_json) if args.config_json else GatewayConfig()
    if args.deployments:
        config.deployments = _parse_deployments(args.deployments)
    if args.protocol:
        config.protocols = [p.lower() for p in args.protocol]
    if args.port:
        config.ports = list(args.port)
    for name in ('name', 'host', 'timeout_send', 'compression', 'prefetch', 'ssl_certfile', 'ssl_keyfile', 'cors',
                 'auth_token_file', 'public_docs'):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if not config.ports:
        from plait.wire.ports import free_port
        config.ports = [free_port() for _ in config.protocols]
    if len(config.ports) != len(config.protocols):
        raise SystemExit(f'{len(config.protocols)} protocol(s) but {len(config.ports)} port(s): give one port each')
    return config


def secrets_of(config: GatewayConfig) -> tuple[tuple[str, ...], Optional[str], Optional[str]]:
    """The tokens callers must send, the file they come from (followed for rotations) and the
    secret for the executors; taken out of the environment once read."""
    from plait import auth

    try:
        tokens = auth.load_tokens(None, config.auth_token_file)
    except auth.AuthConfigError as e:
        raise SystemExit(f'plait gateway: error: {e}') from None
    token_file = auth.token_file_in_use(config.auth_token_file)
    secret = auth.executor_secret()
    for name in auth.SECRET_ENVS:
        os.environ.pop(name, None)
    return tokens, token_file, secret


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    tokens, token_file, secret = secrets_of(config)
    ready_fd = os.environ.get('PLAIT_READY_FD')
    from plait.errors import RuntimeFailedToStart

    try:
        runtime = GatewayRuntime(config, tokens, secret, token_file)
        return event_loop.run(runtime.run(int(ready_fd) if ready_fd else None))
    except (RuntimeFailedToStart, ValueError) as e:
        get_logger(config.name).error('%s', e)
        return 1


if __name__ == '__main__':
    sys.exit(main())
