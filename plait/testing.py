"""Helpers for testing your own Executors and Flows in one process, without starting processes
or opening sockets (as trio and httpx ship theirs):

- `ExecutorHarness`: build an Executor as a worker does and post to it; requests and answers
  go through the same encoding, endpoint table and error reporting as over the network.
- `FakeReplica`: a replica the gateway routes to, answering with an ExecutorHarness, a
  function, or by echoing; it can be marked down or made to fail with a gRPC status.
- `GatewayHarness`: the gateway's routing (graph, joins, retries on replicas, `when=`
  conditions, readiness) over deployments of fake replicas.

    from plait.testing import ExecutorHarness

    with ExecutorHarness(MyExecutor, uses_with={'greeting': 'hi'}) as harness:
        docs = harness.post('/foo', DocumentArray([Document(text='x')]))
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Optional, Union

import grpc

from plait.clients.base import build_requests, error_from_status
from plait.errors import BadRequest, InternalNetworkError, PlaitError, RequestTimeout
from plait.proto import jina_common_pb2, jina_data_pb2
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.request import DataRequest
from plait.serve.gateway.config import START, DeploymentTarget, GatewayConfig
from plait.serve.gateway.connections import ReplicaState
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.mux import rpc_error
from plait.serve.gateway.outcome import Failure, Outcome
from plait.serve.worker import ExecutorRunner, WorkerRuntime
from plait.serve.worker_config import WorkerConfig
from plait.wire.constants import DATA_PATH, SINGLE_PATH, WIRE_DEFAULT_ENDPOINT

DataRequestProto = jina_data_pb2.DataRequestProto
ERROR = jina_common_pb2.StatusProto.ERROR

__all__ = ['ExecutorHarness', 'FakeReplica', 'GatewayHarness']


def _collect(responses: list[DataRequest], return_responses: bool, return_type: Optional[type]) -> Any:
    """What Client.post returns: the responses, or the documents of all of them."""
    if return_responses:
        return responses
    if not responses:
        from plait.documents import DocumentArray

        return (return_type or DocumentArray)()
    docs = responses[0].docs
    for more in responses[1:]:
        docs.extend(more.docs)
    return docs


class ExecutorHarness:
    """An Executor built as its worker would build it (`uses_with`, `uses_metas`, `requests`,
    dynamic batching, runtime_args), served in this process. `post` behaves as `Client.post`:
    documents back, or ExecutorError when the Executor raised."""

    def __init__(self, uses: Union[type, str], uses_with: Optional[dict[str, Any]] = None,
                 uses_metas: Optional[dict[str, Any]] = None, uses_requests: Optional[dict[str, str]] = None,
                 uses_dynamic_batching: Optional[dict[str, Any]] = None, name: str = 'executor',
                 workspace: Optional[str] = None, allow_concurrent: bool = False):
        cls = None if isinstance(uses, str) else uses
        self.config = WorkerConfig(uses=uses if isinstance(uses, str) else 'plait.executor:NoOpExecutor',
                                   uses_with=dict(uses_with or {}), uses_metas=dict(uses_metas or {}),
                                   uses_requests=uses_requests, uses_dynamic_batching=uses_dynamic_batching,
                                   name=name, workspace=workspace, allow_concurrent=allow_concurrent)
        self._loop = asyncio.new_event_loop()
        self._runtime = WorkerRuntime(self.config)
        self.executor = self._runtime._build_executor(cls)
        self.runner = self._runtime.runner = self._loop.run_until_complete(self._make_runner())

    async def _make_runner(self) -> ExecutorRunner:  # inside the loop: batching queues bind to it
        return ExecutorRunner(self.executor, self.config.name, self.config.allow_concurrent, None,
                              self.config.runtime_name)

    def endpoints(self) -> jina_common_pb2.EndpointsProto:
        """What endpoint discovery answers for this Executor."""
        return self._runtime.endpoints_proto

    async def process(self, request: DataRequestProto, *more: DataRequestProto) -> DataRequestProto:
        """One request through the Executor, answered as its worker answers it (with `more`,
        several at once, as `process_data` gives them: the method sees `docs_matrix`)."""
        return await self.runner.process([request, *more], None)

    def post(self, on: str = '/', inputs: Any = None, parameters: Optional[dict[str, Any]] = None,
             request_size: int = 100, target_executor: Optional[str] = None, return_responses: bool = False,
             return_type: Optional[type] = None) -> Any:
        responses = []
        for request in build_requests(on, inputs, request_size, parameters, target_executor):
            response = DataRequest(self._loop.run_until_complete(self.process(request)), return_type)
            if response.status.code == ERROR and not return_responses:
                raise error_from_status(response.status)
            responses.append(response)
        return _collect(responses, return_responses, return_type)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self.executor.close()
        finally:
            self.runner.close()
            self._loop.close()

    def __enter__(self) -> 'ExecutorHarness':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


Handler = Callable[[DataRequestProto], Any]


class FakeReplica:
    """One replica, in this process, for the gateway to route to. It answers with `handler`:
    None echoes the request back, an ExecutorHarness serves it through the Executor, a function
    (sync or async) takes the DataRequestProto and returns the answer. `fail` (a gRPC status
    name such as 'UNAVAILABLE' or 'DEADLINE_EXCEEDED') makes every call fail that way; set
    `serving` to mark it up or down as its health stream would. `requests` keeps what it got."""

    def __init__(self, handler: Union[None, ExecutorHarness, Handler] = None, serving: bool = True,
                 fail: Optional[str] = None, endpoints: Optional[list[str]] = None):
        self.handler = handler
        self.fail = fail
        self.requests: list[DataRequestProto] = []
        self.deployment, self.index, self.address = '', 0, ''
        self.credentials: tuple = ()
        self.state = ReplicaState(False, 'not started')
        self._serving = serving
        self._endpoints = endpoints
        self._on_change: Callable[[Any], None] = lambda replica: None

    def bind(self, deployment: str, index: int, address: str, on_change: Callable[[Any], None]) -> 'FakeReplica':
        self.deployment, self.index, self.address, self._on_change = deployment, index, address, on_change
        return self

    @property
    def serving(self) -> bool:
        return self._serving

    @serving.setter
    def serving(self, value: bool) -> None:
        self._serving = value
        if self.address:
            self._set(value, 'serving' if value else 'marked down by the test')

    def _set(self, serving: bool, reason: str) -> None:
        changed = serving != self.state.serving
        self.state = ReplicaState(serving, reason)
        if changed:
            self._on_change(self)

    # -- what the gateway's connections call --------------------------------------------------
    def start_watching(self) -> None:
        self._set(self._serving, 'serving' if self._serving else 'marked down by the test')

    def mark_down(self, reason: str) -> None:
        self._set(False, reason)

    async def close(self) -> None:
        pass

    async def call(self, request_id: str, payload: bytes, timeout: Optional[float], metadata: tuple,
                   stream: bool = True, path: str = SINGLE_PATH) -> RawDataRequest:
        if self.fail:
            raise rpc_error(grpc.StatusCode[self.fail], f'{self.fail} (FakeReplica {self.address})')
        if not self._serving:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f'FakeReplica {self.address} is down')
        requests = (list(jina_data_pb2.DataRequestListProto.FromString(payload).requests) if path == DATA_PATH
                    else [DataRequestProto.FromString(payload)])
        self.requests.extend(requests)
        try:  # timeout_send bounds the call, as a gRPC deadline does
            answer = await asyncio.wait_for(self._answer(*requests), timeout)
        except asyncio.TimeoutError:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, 'Deadline Exceeded') from None
        return RawDataRequest.FromString(answer.SerializeToString())

    async def _answer(self, request: DataRequestProto, *more: DataRequestProto) -> DataRequestProto:
        if self.handler is None:
            return request
        if isinstance(self.handler, ExecutorHarness):
            return await self.handler.process(request, *more)
        answer = self.handler(request)
        return await answer if inspect.isawaitable(answer) else answer

    async def discover(self, timeout: float) -> jina_common_pb2.EndpointsProto:
        if isinstance(self.handler, ExecutorHarness) and self._endpoints is None:
            return self.handler.endpoints()
        return jina_common_pb2.EndpointsProto(endpoints=self._endpoints or [WIRE_DEFAULT_ENDPOINT])


# the in-process face of the failure policy (see plait.serve.gateway.outcome)
_ERROR_OF = {
    Failure.UNAVAILABLE: InternalNetworkError, Failure.NOT_SERVED: InternalNetworkError,
    Failure.NETWORK_ERROR: InternalNetworkError, Failure.TIMEOUT: RequestTimeout,
    Failure.UNKNOWN_ENDPOINT: BadRequest, Failure.REFUSED: BadRequest, Failure.TOO_LARGE: BadRequest,
    Failure.MALFORMED: BadRequest, Failure.BAD_REQUEST: BadRequest,
}

Replicas = Union[FakeReplica, list[FakeReplica], list[list[FakeReplica]]]


class GatewayHarness:
    """The gateway's routing over `deployments` ({name: a replica, a list of replicas, or a
    list of shards each a list of replicas}), chained in order unless `needs` says otherwise
    ({name: [names]}, 'gateway' for the input). `options` are GatewayConfig fields
    (timeout_send, retries...); `when`/`polling` are per deployment dicts."""

    def __init__(self, deployments: dict[str, Replicas], needs: Optional[dict[str, list[str]]] = None,
                 when: Optional[dict[str, dict[str, Any]]] = None, polling: Optional[dict[str, str]] = None,
                 **options: Any):
        self.replicas: dict[str, FakeReplica] = {}
        targets, previous = [], START
        for name, spec in deployments.items():
            shards = [[spec]] if isinstance(spec, FakeReplica) else \
                [spec] if all(isinstance(r, FakeReplica) for r in spec) else spec
            addresses = []
            for s, shard in enumerate(shards):
                addresses.append([f'fake://{name}/shard-{s}/rep-{r}' for r in range(len(shard))])
                self.replicas.update(zip(addresses[-1], shard))
            targets.append(DeploymentTarget(name, addresses, needs=(needs or {}).get(name, [previous]),
                                            when=(when or {}).get(name),
                                            polling={'*': (polling or {}).get(name, 'ANY')}))
            previous = name
        self.config = GatewayConfig(deployments=targets, **options)
        self._loop = asyncio.new_event_loop()
        self.core = GatewayCore(self.config, logging.getLogger('plait.testing'),
                                replica_factory=lambda dep, i, address, on_change:
                                self.replicas[address].bind(dep, i, address, on_change))
        self._loop.run_until_complete(self._start())

    async def _start(self) -> None:
        self.core.start()

    def ready(self) -> bool:
        return self.core.ready()

    def outcome(self, request: DataRequestProto) -> Outcome:
        """Route one request: the Outcome every face of the gateway maps from."""
        raw = RawDataRequest.FromString(request.SerializeToString())
        return self._loop.run_until_complete(self.core.process(raw))

    def post(self, on: str = '/', inputs: Any = None, parameters: Optional[dict[str, Any]] = None,
             request_size: int = 100, target_executor: Optional[str] = None, return_responses: bool = False,
             return_type: Optional[type] = None) -> Any:
        """As `Client.post` against this gateway: errors raised as the client raises them."""
        responses = []
        for request in build_requests(on, inputs, request_size, parameters, target_executor):
            outcome = self.outcome(request)
            response = DataRequest(DataRequestProto.FromString(outcome.response.SerializeToString()), return_type)
            answered = (Failure.EXECUTOR_ERROR, Failure.EXECUTOR_REFUSED)  # the executor's status says why
            if outcome.failure in answered and not return_responses:
                raise error_from_status(response.status)
            if outcome.failure is not None and outcome.failure not in answered:
                error: type[PlaitError] = _ERROR_OF[outcome.failure]
                raise error(outcome.description)
            responses.append(response)
        return _collect(responses, return_responses, return_type)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.core.close())
            self._loop.close()

    def __enter__(self) -> 'GatewayHarness':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
