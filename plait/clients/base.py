"""What every client protocol shares: turning `inputs` into batched requests, and turning
responses into documents, callbacks and errors."""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Callable, Iterable, Iterator, Optional
from urllib.parse import urlparse

from plait.errors import BadConfig, ExecutorError
from plait.proto import jina_common_pb2, jina_data_pb2
from plait.request import DataRequest
from plait.wire.messages import dict_to_struct, new_request_id

PROTOCOLS = ('grpc', 'http', 'websocket')
_SCHEMES = {'grpc': ('grpc', False), 'grpcs': ('grpc', True), 'http': ('http', False),
            'https': ('http', True), 'ws': ('websocket', False), 'wss': ('websocket', True)}


def parse_address(host: str, port: Optional[int], protocol: str, tls: bool) -> tuple[str, int, str, bool]:
    """Accept `host='grpc://h:p'` style URLs as well as separate host/port/protocol."""
    if '://' in host:
        url = urlparse(host)
        if url.scheme not in _SCHEMES:
            raise BadConfig(f'unknown scheme {url.scheme!r} in {host!r}; use one of {sorted(_SCHEMES)}')
        protocol, tls = _SCHEMES[url.scheme]
        host = url.hostname or '127.0.0.1'
        port = url.port or port
    protocol = str(protocol).lower()
    if protocol not in PROTOCOLS:
        raise BadConfig(f'protocol={protocol!r}: use one of {PROTOCOLS}')
    if port is None:
        raise BadConfig('Client needs a port (or a URL such as grpc://localhost:12345)')
    return host, int(port), protocol, tls


def _batches(inputs: Any, request_size: int) -> Iterable[list[Any]]:
    """Lists of at most `request_size` documents; one empty list when there are no inputs."""
    from docarray import BaseDoc

    if inputs is None:
        yield []
        return
    if callable(inputs) and not isinstance(inputs, BaseDoc):
        inputs = inputs()  # a generator function
    if isinstance(inputs, BaseDoc):
        inputs = [inputs]
    iterator = iter(inputs)
    while batch := list(itertools.islice(iterator, request_size)):
        yield batch


def build_requests(on: str, inputs: Any, request_size: int, parameters: Optional[dict],
                   target_executor: Optional[str]) -> Iterable[jina_data_pb2.DataRequestProto]:
    """One DataRequestProto per batch of `request_size` documents (one empty request without inputs)."""
    if request_size < 1:
        raise BadConfig(f'request_size must be >= 1, got {request_size}')
    from docarray import DocList

    from plait.documents import encode_docs

    for batch in _batches(inputs, request_size):
        req = jina_data_pb2.DataRequestProto()
        req.header.request_id = new_request_id()
        req.header.exec_endpoint = on
        if target_executor:
            req.header.target_executor = target_executor
        dict_to_struct(parameters, req.parameters)
        if batch:
            doc_type = type(batch[0])
            encode_docs(DocList[doc_type](batch), req.data)
        else:
            req.data.docs.SetInParent()
        yield req


class Requests:
    """The requests of one post as the transport takes them, made lazily from the inputs; it
    looks two ahead to tell whether there is just one (sent as a unary call)."""

    def __init__(self, source: Iterable[jina_data_pb2.DataRequestProto]):
        self._rest = iter(source)
        self._head = list(itertools.islice(self._rest, 2))

    @property
    def single(self) -> Optional[jina_data_pb2.DataRequestProto]:
        """The request, when there is exactly one."""
        return self._head[0] if len(self._head) == 1 else None

    def __iter__(self) -> Iterator[jina_data_pb2.DataRequestProto]:
        head, self._head = self._head, []
        yield from head
        yield from self._rest


def error_from_status(status: jina_common_pb2.StatusProto) -> ExecutorError:
    exc = status.exception
    return ExecutorError(status.description or (exc.args[0] if exc.args else 'request failed'),
                         name=exc.name or 'Error', args=list(exc.args), stacks=list(exc.stacks),
                         executor=exc.executor)


class Callbacks:
    """on_done / on_error / on_always applied to each response; an error without on_error
    raises ExecutorError unless continue_on_error."""

    def __init__(self, on_done: Optional[Callable] = None, on_error: Optional[Callable] = None,
                 on_always: Optional[Callable] = None, continue_on_error: bool = False):
        self.on_done, self.on_error, self.on_always = on_done, on_error, on_always
        self.continue_on_error = continue_on_error

    def handle(self, response: DataRequest, pending: list[Any]) -> bool:
        """Call the callbacks; True when the response succeeded. Awaitables that async
        callbacks return are appended to `pending` for the caller to await."""
        failed = response.status.code == jina_common_pb2.StatusProto.ERROR

        def call(callback: Callable) -> None:
            result = callback(response)
            if inspect.isawaitable(result):
                pending.append(result)

        try:
            if failed and self.on_error is not None:
                call(self.on_error)
            elif failed and not self.continue_on_error:
                raise error_from_status(response.status)
            elif not failed and self.on_done is not None:
                call(self.on_done)
        finally:
            if self.on_always is not None:
                call(self.on_always)
        return not failed

    async def apply(self, response: DataRequest) -> bool:
        pending: list[Any] = []
        try:
            return self.handle(response, pending)
        finally:
            for awaitable in pending:
                await awaitable
