"""Routing one request through the graph of deployments: each deployment waits for the
deployments it `needs`, joins their documents, and is skipped when it does not serve the
endpoint or is not targeted. Documents stay undecoded bytes unless a join needs them."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import traceback
from urllib.parse import quote
from typing import Any, Optional

from plait.errors import InternalNetworkError, MalformedRequest, PlaitError
from plait.policies import RetryPolicy
from plait.proto import jina_common_pb2
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.config import START, DeploymentTarget, GatewayConfig
from plait.serve.gateway.connections import DeploymentConnections, Replica, ReplicaFactory, SendError
from plait.serve.gateway.filtering import compile_condition, filter_data
from plait.serve.gateway.outcome import Failure, failure_of_code
from plait.wire.channel import compression_of
from plait.wire.constants import DATA_PATH, DRY_RUN_ENDPOINT, ENDPOINT
from plait.wire.join import merge_data, request_list
from plait.wire.messages import error_status, new_request_id, now_timestamp

ERROR = jina_common_pb2.StatusProto.ERROR


@functools.lru_cache(maxsize=256)
def endpoint_metadata(endpoint: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that names `endpoint` to an executor."""
    return ((ENDPOINT, quote(endpoint, safe='/_-.~')),)  # metadata must be ASCII


class RoutingFailure(PlaitError):
    """A request failed inside the graph; `response` carries the StatusProto for the client,
    `kind` what failed (GatewayCore turns it into an Outcome)."""

    def __init__(self, response: RawDataRequest, kind: Failure):
        super().__init__(response.header.status.description)
        self.response = response
        self.kind = kind


class Graph:
    def __init__(self, config: GatewayConfig, logger: logging.Logger,
                 on_replica_change: Any = None, credentials: tuple = (),
                 replica_factory: Optional[ReplicaFactory] = None):
        self.config = config
        self.logger = logger
        self.targets: dict[str, DeploymentTarget] = {d.name: d for d in config.deployments}
        compression = compression_of(config.compression)
        # an external executor gets its own grpc_metadata, never the Flow's secret
        self.deployments: dict[str, DeploymentConnections] = {
            d.name: DeploymentConnections(d.name, d.shards, compression, on_replica_change or (lambda r: None),
                                          logger, RetryPolicy(retries=config.retries),
                                          tuple((d.grpc_metadata or {}).items()) if d.external else credentials,
                                          replica_factory, tls=d.tls)
            for d in config.deployments}
        # the executors some deployments call before their shards and after them (uses_before/after)
        self.around: dict[str, tuple[DeploymentTarget, DeploymentConnections]] = {}
        for d in config.deployments:
            for side, address in (('uses_before', d.uses_before_address), ('uses_after', d.uses_after_address)):
                if address:
                    helper = DeploymentTarget(name=f'{d.name}/{side}', shards=[[address]],
                                              timeout_send=d.timeout_send)
                    self.around[helper.name] = (helper, DeploymentConnections(
                        helper.name, helper.shards, compression, on_replica_change or (lambda r: None), logger,
                        RetryPolicy(retries=config.retries), credentials, replica_factory))
        for target in config.deployments:
            for need in target.needs:
                if need != START and need not in self.targets:
                    raise ValueError(f'deployment {target.name!r} needs unknown deployment {need!r}')
        # `when=` conditions: only these deployments ever look inside documents
        self.conditions = {d.name: compile_condition(d.when) for d in config.deployments if d.when}
        # floating deployments get their predecessor's output and are never waited for
        main = [d for d in config.deployments if not d.floating]
        self.floating_after: dict[str, list[DeploymentTarget]] = {}
        for d in config.deployments:
            if d.floating:
                self.floating_after.setdefault(d.needs[0], []).append(d)
        self._floating_tasks: set[asyncio.Task] = set()
        needed = {n for d in main for n in d.needs}
        self.leaves = [d.name for d in main if d.name not in needed] or [START]
        # a chain (each deployment needs the one added before it, the usual Flow) is walked in
        # the caller's task: no task and no future per deployment and request
        order = main
        self.chain: Optional[list[DeploymentTarget]] = order if all(
            d.needs == [order[i - 1].name if i else START] for i, d in enumerate(order)) else None
        self._discovery_lock = asyncio.Lock()
        self.observer: Any = None  # times and traces each call to a deployment when set

    def _connections(self) -> list[DeploymentConnections]:
        return [*self.deployments.values(), *(conn for _, conn in self.around.values())]

    def start(self) -> None:
        for conn in self._connections():
            for replica in conn.replicas:
                self.logger.debug('adding connection for deployment %s/rep-%d to grpc://%s',
                                  conn.name, replica.index, replica.address)
                replica.start_watching()

    async def close(self) -> None:
        for task in list(self._floating_tasks):
            task.cancel()
        await asyncio.gather(*self._floating_tasks, return_exceptions=True)
        await asyncio.gather(*(d.close() for d in self._connections()))

    # -- readiness ---------------------------------------------------------------------------
    def ready(self) -> bool:
        return all(d.ready() for d in self._connections())

    def not_ready(self) -> list[dict[str, Any]]:
        """Each replica that is not serving: deployment, replica, address and why."""
        return [{'deployment': d.name, 'replica': r.index, 'address': r.address, 'reason': r.state.reason}
                for d in self._connections() for r in d.replicas if not r.state.serving]

    # -- endpoints ---------------------------------------------------------------------------
    async def discover(self, timeout: float = 2.0) -> None:
        """Learn each deployment's endpoints once (those still unknown)."""
        if all(d.endpoints is not None for d in self.deployments.values()):
            return  # the usual case: every request passes here
        unknown = [d for d in self.deployments.values() if d.endpoints is None]
        async with self._discovery_lock:
            await asyncio.gather(*(d.discover_endpoints(timeout) for d in unknown if d.endpoints is None),
                                 return_exceptions=True)

    def all_endpoints(self) -> list[str]:
        found: set[str] = set()
        for d in self.deployments.values():
            found |= d.endpoints or set()
        return sorted(found)

    def schemas(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for d in self.deployments.values():
            for endpoint, schema in d.schemas.items():
                merged.setdefault(endpoint, schema)
        return merged

    def forget_endpoints(self, replica: Replica) -> None:
        """A replica came back: its deployment may have been redeployed with other endpoints."""
        conn = self.deployments.get(replica.deployment)  # None: a uses_before / uses_after executor
        if replica.state.serving and conn is not None:
            conn.endpoints = None

    # -- routing -----------------------------------------------------------------------------
    async def process(self, request: RawDataRequest) -> RawDataRequest:
        """Route `request` through the graph; raises RoutingFailure for errors the gateway
        itself detects (unreachable deployment, timeout, unknown endpoint) and
        MalformedRequest for a target_executor that is no regular expression."""
        header = request.header
        if not header.request_id:
            header.request_id = new_request_id()
        endpoint = header.exec_endpoint if header.HasField('exec_endpoint') else '/'
        target_re = self._target_regex(header.target_executor) if header.HasField('target_executor') \
            and header.target_executor else None
        route = request.routes.add(executor=self.config.name, start_time=now_timestamp())
        del route  # routes[0] stays the gateway's
        await self.discover()
        self._check_endpoint(request, endpoint)
        if self.floating_after:
            self._feed_floating(START, request, endpoint, target_re)
        if self.chain is not None:
            for target in self.chain:
                request = await self._node(target, endpoint, target_re, request)
                if self.floating_after:
                    self._feed_floating(target.name, request, endpoint, target_re)
            request.routes[0].end_time.CopyFrom(now_timestamp())
            return request
        outputs: dict[str, asyncio.Future] = {}
        loop = asyncio.get_running_loop()
        start = loop.create_future()
        start.set_result(request)
        outputs[START] = start
        tasks = []
        main = [t for t in self.targets.values() if not t.floating]
        for target in main:
            outputs[target.name] = loop.create_future()
        for target in main:
            tasks.append(asyncio.ensure_future(self._run_node(target, endpoint, target_re, outputs)))
        try:
            results = [await outputs[leaf] for leaf in self.leaves]
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
        response = results[0] if len(results) == 1 else self._join(results)
        response.routes[0].end_time.CopyFrom(now_timestamp())
        return response

    async def run_chain(self, targets: list[DeploymentTarget], endpoint: str, request: RawDataRequest) \
            -> RawDataRequest:
        """`request` through `targets` in turn, each as process() would call it (a part of a chain:
        streaming runs the deployments before and after its generator this way)."""
        for target in targets:
            request = await self._node(target, endpoint, None, request)
        return request

    @staticmethod
    def _target_regex(pattern: str) -> Optional[re.Pattern]:
        try:
            return re.compile(pattern)
        except re.error as e:
            raise MalformedRequest(f'target_executor {pattern!r} is not a valid regular expression: {e}') from None

    def _check_endpoint(self, request: RawDataRequest, endpoint: str) -> None:
        if endpoint == DRY_RUN_ENDPOINT or not self.deployments:
            return
        if any(d.serves(endpoint) for d in self.deployments.values()):
            return
        shown = endpoint if len(endpoint) <= 200 else endpoint[:200] + '...'  # error details must stay small
        message = (f'endpoint {shown!r} is not served by any executor of this Flow; served endpoints: '
                   f'{[e for e in self.all_endpoints() if e != DRY_RUN_ENDPOINT]}')
        request.header.status.CopyFrom(error_status(message, name='BadRequest'))
        raise RoutingFailure(request, Failure.UNKNOWN_ENDPOINT)

    async def _run_node(self, target: DeploymentTarget, endpoint: str, target_re: Optional[re.Pattern],
                        outputs: dict[str, asyncio.Future]) -> None:
        future = outputs[target.name]
        try:
            inputs = [await outputs[n] for n in target.needs]
            if target.no_reduce and len(inputs) > 1 and not any(r.header.status.code == ERROR for r in inputs):
                # unmerged: the executor gets each predecessor's documents (docs_matrix)
                future.set_result(await self._send(target, self.deployments[target.name], endpoint, *inputs))
            else:
                request = inputs[0] if len(inputs) == 1 else self._join(inputs)
                future.set_result(await self._node(target, endpoint, target_re, request))
            if self.floating_after:
                self._feed_floating(target.name, future.result(), endpoint, target_re)
        except BaseException as e:  # hand failures to whoever waits for this node
            if not future.done():
                future.set_exception(e)
            if not isinstance(e, (Exception, asyncio.CancelledError)):
                raise

    def _feed_floating(self, name: str, request: RawDataRequest, endpoint: str,
                       target_re: Optional[re.Pattern]) -> None:
        """Send (a copy of) the output of `name` to the floating deployments it feeds, in tasks
        nobody waits for: their answers are dropped, their failures only logged."""
        if request.header.status.code == ERROR:
            return
        for target in self.floating_after.get(name, ()):
            copy = RawDataRequest()
            copy.CopyFrom(request)
            task = asyncio.ensure_future(self._float(target, endpoint, target_re, copy))
            self._floating_tasks.add(task)
            task.add_done_callback(self._floating_tasks.discard)

    async def _float(self, target: DeploymentTarget, endpoint: str, target_re: Optional[re.Pattern],
                     request: RawDataRequest) -> None:
        try:
            answer = await self._node(target, endpoint, target_re, request)
        except RoutingFailure as failure:
            self.logger.warning('floating deployment %s: %s', target.name, failure.response.header.status.description)
            return
        if answer.header.status.code == ERROR:
            self.logger.warning('floating deployment %s: %s', target.name, answer.header.status.description)

    async def _node(self, target: DeploymentTarget, endpoint: str, target_re: Optional[re.Pattern],
                    request: RawDataRequest) -> RawDataRequest:
        """What deployment `target` makes of `request`: its response, or the request itself
        when it is skipped (an earlier error, not targeted, endpoint not served, no document
        meets its `when`)."""
        conn = self.deployments[target.name]
        skip = (request.header.status.code == ERROR
                or (target_re is not None and not target_re.match(target.name))  # a prefix match, as Jina does
                or (endpoint != DRY_RUN_ENDPOINT and not conn.serves(endpoint)))
        condition = self.conditions.get(target.name)
        if condition is not None and not skip and endpoint != DRY_RUN_ENDPOINT:
            original = request.data
            data, send = filter_data(original, condition)
            if data is not original:
                request = self._with_data(request, data)
            skip = not send
        return request if skip else await self._send(target, conn, endpoint, request)

    @staticmethod
    def _with_data(request: RawDataRequest, data: bytes) -> RawDataRequest:
        """A copy of `request` carrying other documents (the original may feed other branches)."""
        copy = RawDataRequest()
        copy.CopyFrom(request)
        copy.data = data
        return copy

    def _join(self, requests: list[RawDataRequest]) -> RawDataRequest:
        failed = [r for r in requests if r.header.status.code == ERROR]
        if failed:
            return failed[0]
        joined = RawDataRequest()
        joined.CopyFrom(requests[0])
        joined.data = merge_data([r.data for r in requests])
        seen = {(r.executor, r.start_time.ToNanoseconds()) for r in joined.routes}
        for other in requests[1:]:
            for route in other.routes:
                if (route.executor, route.start_time.ToNanoseconds()) not in seen:
                    joined.routes.append(route)
        for other in requests[1:]:
            joined.parameters.MergeFrom(other.parameters)
        return joined

    async def _send(self, target: DeploymentTarget, conn: DeploymentConnections, endpoint: str,
                    request: RawDataRequest, *more: RawDataRequest) -> RawDataRequest:
        """`request` to deployment `target` (its uses_before first, its shards, its uses_after
        last); with `more`, the requests go together, unmerged, in one `process_data` call."""
        before = self.around.get(f'{target.name}/uses_before')
        if before is not None:
            request = await self._send(*before, endpoint, request)
            if request.header.status.code == ERROR:
                return request
        timeout_ms = target.timeout_send if target.timeout_send is not None else self.config.timeout_send
        timeout = timeout_ms / 1000 if timeout_ms and timeout_ms > 0 else None
        metadata = endpoint_metadata(endpoint)
        options = {} if not more else {'path': DATA_PATH}
        payload = request.SerializeToString() if not more else request_list([request, *more])
        send = conn.send if self.observer is None else self.observer.sender(target.name, endpoint, conn.send)
        try:
            if len(conn.shards) == 1 or target.polling_for(endpoint) != 'ALL':  # one call: no task for it
                responses = [await send(conn.pick_any_shard(), request.header.request_id, payload, timeout,
                                        metadata, **options)]
            else:
                responses = await asyncio.gather(*(send(s, request.header.request_id, payload, timeout, metadata,
                                                        **options) for s in conn.shards))
        except SendError as e:
            failed = RawDataRequest()
            failed.CopyFrom(request)
            try:  # the stack users see ends in the InternalNetworkError they can look up
                raise InternalNetworkError(e.describe(), e.deployment, e.addresses) from e
            except InternalNetworkError as network_error:
                stacks = traceback.format_exception(network_error)
            failed.header.status.CopyFrom(error_status(e.describe(), stacks=stacks))
            self.logger.warning('%s', e.describe())
            raise RoutingFailure(failed, failure_of_code(e.code)) from None
        after = self.around.get(f'{target.name}/uses_after')
        if after is not None and not any(r.header.status.code == ERROR for r in responses):
            return await self._send(*after, endpoint, *responses)  # every shard's answer, unmerged
        return responses[0] if len(responses) == 1 else self._join(responses)
