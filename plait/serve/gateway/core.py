"""What every protocol of the gateway serves from: routing, dry_run, readiness and endpoint
information, over one Graph."""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable, Optional

from google.protobuf.message import DecodeError

from plait.errors import MalformedRequest
from plait.proto import jina_common_pb2
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.config import GatewayConfig
from plait.serve.gateway.connections import Replica, ReplicaFactory
from plait.serve.gateway.graph import Graph, RoutingFailure
from plait.serve.gateway.outcome import Outcome, executor_outcome
from plait.wire.constants import DRY_RUN_ENDPOINT
from plait.wire.join import DataContentProto

StatusProto = jina_common_pb2.StatusProto


class GatewayCore:
    def __init__(self, config: GatewayConfig, logger: logging.Logger, credentials: tuple = (),
                 replica_factory: Optional[ReplicaFactory] = None):
        """`credentials`: gRPC metadata every call to an executor carries (its secret);
        `replica_factory`: replicas without sockets, for tests (see plait.testing)."""
        self.config = config
        self.logger = logger
        self._readiness_listeners: list[Callable[[bool], Any]] = []
        self._was_ready: Optional[bool] = None
        self._seen_ready: set[str] = set()
        self.graph = Graph(config, logger, on_replica_change=self._on_replica_change, credentials=credentials,
                           replica_factory=replica_factory)
        self.observer: Any = None  # plait.observability.observers.GatewayObserver when observability is on

    def observe(self, observer: Any) -> None:
        self.observer = self.graph.observer = observer

    def start(self) -> None:
        self.graph.start()

    async def close(self) -> None:
        await self.graph.close()

    # -- readiness ---------------------------------------------------------------------------
    def on_readiness(self, listener: Callable[[bool], Any]) -> None:
        self._readiness_listeners.append(listener)

    def ready(self) -> bool:
        return self.graph.ready()

    def not_ready(self) -> list[dict[str, Any]]:
        return self.graph.not_ready()

    def replica_states(self) -> list[tuple[str, int, str, bool]]:
        """(deployment, replica, address, serving) of every replica, from the live view."""
        return [(d.name, r.index, r.address, r.state.serving)
                for d in self.graph.deployments.values() for r in d.replicas]

    def _on_replica_change(self, replica: Replica) -> None:
        where = f'{replica.deployment} replica {replica.index} at {replica.address}'
        if replica.state.serving:
            if replica.address in self._seen_ready:
                self.logger.info('%s is back', where)
            else:
                self.logger.debug('%s is ready', where)
                self._seen_ready.add(replica.address)
            self.graph.forget_endpoints(replica)
        elif replica.address in self._seen_ready:
            self.logger.warning('%s is down (%s)', where, replica.state.reason)
        ready = self.graph.ready()
        if ready != self._was_ready:
            self._was_ready = ready
            for listener in self._readiness_listeners:
                listener(ready)

    # -- requests ----------------------------------------------------------------------------
    async def process(self, request: RawDataRequest, carrier: Any = None) -> Outcome:
        """Route a request: the answer and, when it failed, what kind of failure (see outcome).
        `carrier` (gRPC context or metadata) may hold the caller's trace context."""
        try:
            if self.observer is None:
                return executor_outcome(await self.graph.process(request))
            return executor_outcome(await self.observer.process(request, carrier, self.graph.process))
        except RoutingFailure as failure:
            return Outcome(failure.response, failure.kind)
        except MalformedRequest as e:  # a target_executor that is no regular expression
            return Outcome.refused(e, request.header.request_id)

    async def process_bytes(self, body: bytes, carrier: Any = None) -> Outcome:
        """`process` of a serialized DataRequestProto; MALFORMED when it cannot be read."""
        try:
            request = RawDataRequest.FromString(body)
        except DecodeError as e:
            return Outcome.refused(MalformedRequest(f'malformed DataRequestProto: {e}'))
        return await self.process(request, carrier)

    def stream_doc(self, request: Any, timeout: Optional[float] = None) -> AsyncIterator[Any]:
        """The answer messages (SingleDocumentRequestProto) of a `stream_doc` request through the
        Flow, as they come (plait.serve.gateway.streaming); close the iterator to cancel."""
        from plait.serve.gateway.streaming import FlowStream

        return FlowStream(self.graph, request, timeout).replies()

    async def dry_run(self) -> StatusProto:
        """Send one empty document with endpoint _jina_dry_run_ through the whole graph."""
        request = RawDataRequest()
        request.header.exec_endpoint = DRY_RUN_ENDPOINT
        content = DataContentProto()
        doc = content.docs.docs.add()
        doc.data['id'].text = 'dry-run'
        request.data = content.SerializeToString()
        outcome = await self.process(request)
        return outcome.response.header.status if outcome.failure else StatusProto()

    async def discover(self) -> None:
        await self.graph.discover()

    def endpoints(self) -> list[str]:
        return self.graph.all_endpoints()

    def schemas(self) -> dict[str, Any]:
        return self.graph.schemas()

