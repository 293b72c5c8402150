"""Connections from the gateway to every executor replica, each with a live health view
kept by a `grpc.health.v1.Health/Watch` stream (no data is sent to learn health), and
sending with retries on the next healthy replica."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.errors import InternalNetworkError
from plait.policies import RetryPolicy
from plait.serve.gateway.mux import Busy, MuxStream
from plait.wire.constants import SINGLE_PATH, WIRE_DEFAULT_ENDPOINT
from plait.wire.channel import grpc_options


SERVING = health_pb2.HealthCheckResponse.SERVING
_CHANNEL_OPTIONS = [
    # reconnect quickly to a replica that comes back (grpc's default backoff grows to 120 s)
    ('grpc.initial_reconnect_backoff_ms', 100),
    ('grpc.min_reconnect_backoff_ms', 100),
    ('grpc.max_reconnect_backoff_ms', 1000),
]


class SendError(InternalNetworkError):
    """A deployment could not serve a request: which one, where, and the last gRPC error."""

    def __init__(self, deployment: str, addresses: list[str], code: grpc.StatusCode, details: str):
        self.code = code
        self.details = details
        super().__init__('', deployment, addresses)
        self.args = (self.describe(),)

    def describe(self) -> str:
        first = (self.details or self.code.name).split(';')[0].strip()
        where = '{' + ', '.join(repr(a) for a in self.addresses) + '}'
        if self.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
            return (f'{first} |Gateway: deployment {self.deployment} at address(es) {where} refused the '
                    f'request ({self.code.name}).')
        if self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return (f'{first} |Gateway: Communication error with deployment {self.deployment} at '
                    f'address(es) {where}. The executor did not answer within timeout_send.')
        return (f'{first} |Gateway: Communication error with deployment {self.deployment} at '
                f'address(es) {where}. Head or worker(s) may be down.')


@dataclass
class ReplicaState:
    serving: bool = False
    reason: str = 'not checked yet'


class Replica:
    """One executor replica: a channel, its live health, and a method cache."""

    def __init__(self, deployment: str, index: int, address: str, compression: Optional[grpc.Compression],
                 on_change: Callable[['Replica'], None], logger: logging.Logger, credentials: tuple = (),
                 tls: bool = False):
        self.deployment = deployment
        self.tls = tls
        self.credentials = credentials  # metadata every call but health carries (the gateway's secret)
        self.index = index
        self.address = address
        self.state = ReplicaState()
        self._on_change = on_change
        self._logger = logger
        self._compression = compression
        self._channel: Optional[grpc.aio.Channel] = None
        self._calls: dict[str, Any] = {}
        self._watch_task: Optional[asyncio.Task] = None
        self.mux = MuxStream(lambda: self.channel, credentials)

    @property
    def channel(self) -> grpc.aio.Channel:
        # created on first use, inside the event loop that will use it
        if self._channel is None:
            options = grpc_options() + _CHANNEL_OPTIONS
            self._channel = grpc.aio.secure_channel(self.address, grpc.ssl_channel_credentials(), options=options,
                                                    compression=self._compression) if self.tls else \
                grpc.aio.insecure_channel(self.address, options=options, compression=self._compression)
        return self._channel

    def unary(self, path: str) -> Any:
        call = self._calls.get(path)
        if call is None:
            # bytes in, bytes out: documents are never decoded on the way through
            call = self._calls[path] = self.channel.unary_unary(path)
        return call

    async def call(self, request_id: str, payload: bytes, timeout: Optional[float], metadata: tuple,
                   stream: bool = True, path: str = SINGLE_PATH) -> RawDataRequest:
        """One attempt on this replica: on its open stream unless `stream` is False (or the
        request id is already in flight there), else a unary call of `path`; raises AioRpcError."""
        if stream and path == SINGLE_PATH:
            try:
                return await self.mux.send(request_id, payload, timeout)
            except Busy:
                pass
        body = await self.unary(path)(payload, timeout=timeout, metadata=metadata + self.credentials)
        return RawDataRequest.FromString(body)

    async def discover(self, timeout: float) -> Any:
        """The replica's EndpointsProto; raises AioRpcError (UNIMPLEMENTED: it has no discovery)."""
        from plait.proto import jina_common_pb2_grpc

        stub = jina_common_pb2_grpc.JinaDiscoverEndpointsRPCStub(self.channel)
        return await stub.endpoint_discovery(empty_pb2.Empty(), timeout=timeout, metadata=self.credentials or None)

    def start_watching(self) -> None:
        self._watch_task = asyncio.ensure_future(self._watch())

    def _set(self, serving: bool, reason: str) -> None:
        changed = serving != self.state.serving
        self.state = ReplicaState(serving, reason)
        if changed:
            self._on_change(self)

    async def _watch(self) -> None:
        stub = health_pb2_grpc.HealthStub(self.channel)
        while True:
            try:
                call = stub.Watch(health_pb2.HealthCheckRequest(service=''), wait_for_ready=True)
                async for reply in call:
                    if reply.status == SERVING:
                        self._set(True, 'serving')
                    else:
                        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                        self._set(False, f'health is {name}')
                self._set(False, 'health stream ended')
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as e:
                self._set(False, (e.details() or e.code().name).split(';')[0])
            await asyncio.sleep(0.1)

    def mark_down(self, reason: str) -> None:
        self._set(False, reason)

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        await self.mux.close()
        if self._channel is not None:
            await self._channel.close()


# (deployment, index, address, on_change) -> an object with Replica's interface
ReplicaFactory = Callable[[str, int, str, Callable[[Replica], None]], Replica]


class ShardPool:
    """The replicas of one shard, used round-robin, healthy ones first."""

    def __init__(self, replicas: list[Replica]):
        self.replicas = replicas
        self._next = itertools.count()

    def order(self) -> list[Replica]:
        n = len(self.replicas)
        if n == 1:
            return self.replicas
        start = next(self._next) % n
        rotated = self.replicas[start:] + self.replicas[:start]
        return [r for r in rotated if r.state.serving] + [r for r in rotated if not r.state.serving]

    def ready(self) -> bool:
        return any(r.state.serving for r in self.replicas)


class DeploymentConnections:
    """All shards of one deployment."""

    def __init__(self, name: str, shards: list[list[str]], compression: Optional[grpc.Compression],
                 on_change: Callable[[Replica], None], logger: logging.Logger,
                 retry: Optional[RetryPolicy] = None, credentials: tuple = (),
                 replica_factory: Optional[ReplicaFactory] = None, tls: bool = False):
        self.name = name
        index = itertools.count()

        def replica(address: str) -> Replica:
            if replica_factory is not None:  # a test seam: replicas without sockets (plait.testing)
                return replica_factory(name, next(index), address, on_change)
            return Replica(name, next(index), address, compression, on_change, logger, credentials, tls)

        self.shards = [ShardPool([replica(addr) for addr in shard]) for shard in shards]
        self.retry = retry or RetryPolicy()
        self._any = itertools.count()
        self._endpoints: Optional[set[str]] = None
        self._serves_all = True
        self.schemas: dict[str, Any] = {}

    @property
    def endpoints(self) -> Optional[set[str]]:
        """The endpoints this deployment serves (None: not known yet)."""
        return self._endpoints

    @endpoints.setter
    def endpoints(self, endpoints: Optional[set[str]]) -> None:
        self._endpoints = endpoints
        self._serves_all = endpoints is None or bool({WIRE_DEFAULT_ENDPOINT, '__default__'} & endpoints)

    @property
    def replicas(self) -> list[Replica]:
        return [r for s in self.shards for r in s.replicas]

    def addresses(self) -> list[str]:
        return [r.address for r in self.replicas]

    def ready(self) -> bool:
        return all(s.ready() for s in self.shards)

    def pick_any_shard(self) -> ShardPool:
        if len(self.shards) == 1:
            return self.shards[0]
        healthy = [s for s in self.shards if s.ready()] or self.shards
        return healthy[next(self._any) % len(healthy)]

    async def send(self, shard: ShardPool, request_id: str, payload: bytes, timeout: Optional[float],
                   metadata: tuple, stream: bool = True, path: str = SINGLE_PATH) -> RawDataRequest:
        """Send to one replica of `shard` (on its open stream unless `stream` is False, else as
        a unary call carrying `metadata`), retrying the next replica on transport errors."""
        tries = self.retry.tries(len(shard.replicas))
        last: Optional[grpc.aio.AioRpcError] = None
        order = shard.order()
        for attempt in range(tries):
            replica = order[attempt % len(order)]
            if attempt >= len(order) and not replica.state.serving and last is not None \
                    and last.code() == grpc.StatusCode.UNAVAILABLE:
                await asyncio.sleep(self.retry.backoff * attempt)  # every replica failed once: brief backoff
            try:
                return await replica.call(request_id, payload, timeout, metadata, stream, path)
            except grpc.aio.AioRpcError as e:
                last = e
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    replica.mark_down((e.details() or 'unavailable').split(';')[0])
                if not self.retry.retries_after(e.code().name):
                    break
        assert last is not None
        raise SendError(self.name, [r.address for r in shard.replicas], last.code(), last.details() or '')

    async def discover_endpoints(self, timeout: float) -> None:
        """Ask one replica which endpoints this deployment serves (cached)."""
        for replica in self.shards[0].order():
            try:
                reply = await replica.discover(timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.endpoints = {WIRE_DEFAULT_ENDPOINT}
                    return
                continue
            self.endpoints = set(reply.endpoints)
            from google.protobuf import json_format
            self.schemas = json_format.MessageToDict(reply.schemas) if reply.schemas.fields else {}
            return
        raise SendError(self.name, self.addresses(), grpc.StatusCode.UNAVAILABLE,
                        'failed to connect to all addresses')

    def serves(self, endpoint: str) -> bool:
        # endpoints unknown yet: let the executor decide; a default endpoint serves them all
        return self._serves_all or endpoint in self._endpoints  # type: ignore[operator]

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.replicas), return_exceptions=True)

