"""Client (blocking) and AsyncClient: post documents to a Flow, Deployment or Executor over
grpc, http or websocket, and ask whether it is ready."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from functools import partialmethod
from typing import Any, AsyncIterator, Callable, Coroutine, Iterable, Iterator, Optional, Sequence

from plait import jina_options
from plait.clients.base import Callbacks, Requests, build_requests, parse_address
from plait.clients.retry import TRANSIENT, Backoff, Unanswered
from plait.errors import UnknownOption
from plait.options import parameters_of, refuse_unknown
from plait.request import DataRequest

Metadata = Sequence[tuple[str, str]]  # gRPC call metadata: (key, value) pairs
DEFAULT_PROBE_TIMEOUT = 3.0  # seconds; readiness calls never wait longer unless asked


def _make_transport(host: str, port: int, protocol: str, tls: bool, token: Optional[str] = None,
                    **options: Any) -> Any:
    if protocol == 'grpc':
        from plait.clients.grpc import GrpcTransport

        return GrpcTransport(host, port, tls, compression=options.get('compression'),
                             root_certificates=options.get('root_certificates'), token=token)
    if protocol == 'http':
        from plait.clients.http import HttpTransport

        return HttpTransport(host, port, tls, verify=options.get('verify', True), token=token)
    from plait.clients.websocket import WebSocketTransport

    return WebSocketTransport(host, port, tls, verify=options.get('verify', True), token=token)


def _token(auth_token: Optional[str]) -> Optional[str]:
    """The token to send: `auth_token`, else $PLAIT_AUTH_TOKEN / $PLAIT_AUTH_TOKEN_FILE."""
    from plait import auth
    from plait.errors import BadConfig

    try:
        return auth.client_token(auth_token)
    except auth.AuthConfigError as e:
        raise BadConfig(str(e)) from None


class AsyncClient:
    """`async for docs in client.post('/', inputs)`: one item per response, as they arrive."""

    def __init__(self, host: str = '127.0.0.1', port: Optional[int] = None, protocol: str = 'grpc',
                 tls: bool = False, compression: Optional[str] = None, prefetch: int = 1000,
                 root_certificates: Optional[bytes] = None, verify: Any = True, asyncio: bool = True,
                 auth_token: Optional[str] = None, tracing: bool = False, traces_exporter_host: Optional[str] = None,
                 traces_exporter_port: Optional[int] = None, **kwargs: Any):
        if kwargs:
            refuse_unknown('Client', kwargs, parameters_of(AsyncClient.__init__), jina_options.CLIENT)
        self._tracing: Any = None  # tracing=True: each post is a `client <endpoint>` span, exported over OTLP
        if tracing:
            from plait.logs import get_logger
            from plait.observability import ObservabilityConfig
            from plait.observability.tracing import Tracing

            endpoint = ObservabilityConfig(traces_exporter_host=traces_exporter_host,
                                           traces_exporter_port=traces_exporter_port).traces_endpoint()
            self._tracing = Tracing('client', endpoint, get_logger('client'))
        self.host, self.port, self.protocol, self.tls = parse_address(host, port, protocol, tls)
        self.prefetch = prefetch
        self._transport = _make_transport(self.host, self.port, self.protocol, self.tls, _token(auth_token),
                                          compression=compression, root_certificates=root_certificates,
                                          verify=verify)

    async def post(self, on: str = '/', inputs: Any = None, request_size: int = 100,
                   parameters: Optional[dict] = None, target_executor: Optional[str] = None,
                   return_responses: bool = False, on_done: Optional[Callable] = None,
                   on_error: Optional[Callable] = None, on_always: Optional[Callable] = None,
                   timeout: Optional[float] = None, prefetch: Optional[int] = None,
                   results_in_order: bool = True, continue_on_error: bool = False,
                   return_type: Optional[type] = None, max_attempts: int = 1, initial_backoff: float = 0.5,
                   max_backoff: float = 2.0, backoff_multiplier: float = 1.5,
                   metadata: Optional[Metadata] = None, headers: Optional[dict[str, str]] = None,
                   **kwargs: Any) -> AsyncIterator[Any]:
        """One item per response as it arrives: its documents, or the response itself with
        return_responses=True. `inputs` (a list, an iterator, a generator or a function
        returning one) are read lazily, request by request, as the server answers."""
        if kwargs:
            refuse_unknown('post', kwargs, parameters_of(AsyncClient.post), jina_options.POST)
        requests = build_requests(on, inputs, request_size, parameters, target_executor)
        callbacks = Callbacks(on_done, on_error, on_always, continue_on_error)
        sending = Sending(Backoff(max_attempts, initial_backoff, max_backoff, backoff_multiplier),
                          self._call_options(metadata, headers))
        async for item in self._post_requests(requests, callbacks, return_responses, timeout, prefetch,
                                              results_in_order, return_type, self._trace(on), sending):
            yield item

    def _call_options(self, metadata: Optional[Metadata], headers: Optional[dict[str, str]]) -> tuple:
        """The caller's (key, value) pairs that go with each call: gRPC `metadata`, or the
        `headers` of HTTP requests and of the WebSocket handshake."""
        if metadata is not None and self.protocol != 'grpc':
            raise UnknownOption(f"post: metadata= is gRPC call metadata; with protocol={self.protocol!r} "
                                'give headers=', ['metadata'])
        if headers is not None and self.protocol == 'grpc':
            raise UnknownOption("post: headers= go with HTTP and WebSocket; with protocol='grpc' give "
                                'metadata=[(key, value), ...]', ['headers'])
        return tuple((str(k), str(v)) for k, v in (metadata or (headers or {}).items()))

    def _trace(self, on: str) -> tuple[Any, tuple]:
        """(span, metadata) carrying this post's trace context (see plait.observability.client_trace)."""
        from plait.observability import client_trace

        return client_trace(self._tracing, on)

    async def _post_requests(self, requests: Iterable[Any], callbacks: Callbacks, return_responses: bool,
                             timeout: Optional[float], prefetch: Optional[int], results_in_order: bool,
                             return_type: Optional[type], trace: tuple[Any, tuple] = (None, ()),
                             sending: Optional['Sending'] = None) -> AsyncIterator[Any]:
        span, metadata = trace
        ok = False
        try:
            async for item in self._responses(requests, callbacks, return_responses, timeout, prefetch,
                                              results_in_order, return_type, metadata, sending or Sending()):
                yield item
            ok = True
        finally:
            if span is not None:
                from plait.observability.tracing import end_span
                end_span(span, ok)

    async def _responses(self, requests: Iterable[Any], callbacks: Callbacks, return_responses: bool,
                         timeout: Optional[float], prefetch: Optional[int], results_in_order: bool,
                         return_type: Optional[type], metadata: tuple, sending: 'Sending') -> AsyncIterator[Any]:
        window = self.prefetch if prefetch is None else prefetch
        extra = metadata + sending.extra  # trace context, then the caller's metadata or headers
        unanswered = Unanswered(requests)
        batch, attempt = unanswered.first(), 1
        while True:
            try:
                # aclosing: a callback that raises mid-stream still closes the transport's stream
                sent = self._transport.send(batch, window, timeout, results_in_order, extra)
                async with contextlib.aclosing(sent) as stream:
                    async for proto in stream:
                        unanswered.answered(proto)
                        response = DataRequest(proto, return_type)
                        ok = await callbacks.apply(response)
                        if return_responses:
                            yield response
                        elif ok:
                            yield response.docs
                return
            except TRANSIENT:
                if attempt >= sending.backoff.max_attempts:
                    raise
                await asyncio.sleep(sending.backoff.wait(attempt))
                batch, attempt = unanswered.again(), attempt + 1

    async def stream_doc(self, on: str, inputs: Any, parameters: Optional[dict] = None,
                         return_type: Optional[type] = None, timeout: Optional[float] = None,
                         metadata: Optional[Metadata] = None, headers: Optional[dict[str, str]] = None,
                         **kwargs: Any) -> AsyncIterator[Any]:
        """Send one document to a streaming endpoint (a generator); yields each document it
        makes as soon as it arrives, as `return_type` (default plait.Document). `timeout` bounds
        the whole stream; leaving the loop early ends the call, which stops the generator."""
        from plait.clients.streaming import documents, stream_request

        if kwargs:
            refuse_unknown('stream_doc', kwargs, parameters_of(AsyncClient.stream_doc), jina_options.POST)
        request = stream_request(on, inputs, parameters)
        extra = self._call_options(metadata, headers)
        async with contextlib.aclosing(documents(self._transport.stream_doc(request, timeout, extra),
                                                 return_type)) as docs:
            async for doc in docs:
                yield doc

    # the CRUD shortcuts: post to /index, /search, /update, /delete
    index = partialmethod(post, '/index')
    search = partialmethod(post, '/search')
    update = partialmethod(post, '/update')
    delete = partialmethod(post, '/delete')

    async def is_flow_ready(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return await self._transport.is_ready('flow', timeout)

    async def is_deployment_ready(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return await self._transport.is_ready('deployment', timeout)

    async def dry_run(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return await self._transport.dry_run(timeout)

    async def status(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> dict[str, dict[str, str]]:
        return await self._transport.status_info(timeout)

    async def close(self) -> None:
        await self._transport.close()
        self.close_tracing()

    def close_tracing(self) -> None:
        """Send the spans still queued (tracing=True) and stop the exporter."""
        tracing, self._tracing = self._tracing, None
        if tracing is not None:
            tracing.close()

    async def __aenter__(self) -> 'AsyncClient':
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


@dataclass(frozen=True)
class Sending:
    """How a post sends: its retries, and the caller's (key, value) pairs that go with each call."""

    backoff: Backoff = Backoff()
    extra: tuple = ()


def _with_retries(send: Callable[[], Any], backoff: Backoff) -> Any:
    """`send()`, tried again after transient failures as `backoff` says (blocking)."""
    for attempt in range(1, backoff.max_attempts + 1):
        try:
            return send()
        except TRANSIENT:
            if attempt >= backoff.max_attempts:
                raise
            time.sleep(backoff.wait(attempt))


async def _await_all(awaitables: list[Any]) -> None:
    for awaitable in awaitables:
        await awaitable


class _LoopThread:
    """A private event loop in a daemon thread, so blocking calls work anywhere (also inside
    a running loop, e.g. a notebook) and connections persist between calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name='plait-client', daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self, cleanup: Optional[Coroutine[Any, Any, Any]] = None) -> None:
        """Run `cleanup` (e.g. closing channels) on the loop, then end the loop and its thread."""
        if self.loop.is_closed():
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            try:
                asyncio.run_coroutine_threadsafe(cleanup, self.loop).result(timeout=2)
            except Exception:  # closing is best effort
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2)


class Client:
    """Blocking client: `Client(port=12345).post('/', docs)` returns the documents.
    `Client(..., asyncio=True)` is an AsyncClient, as in Jina."""

    def __new__(cls, *args: Any, asyncio: bool = False, **kwargs: Any) -> Any:
        if asyncio:
            return AsyncClient(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, host: str = '127.0.0.1', port: Optional[int] = None, protocol: str = 'grpc',
                 tls: bool = False, asyncio: bool = False, **kwargs: Any):
        self._async = AsyncClient(host, port, protocol, tls, **kwargs)
        self.host, self.port, self.protocol, self.tls = (self._async.host, self._async.port,
                                                         self._async.protocol, self._async.tls)
        self._runner: Optional[_LoopThread] = None
        self._lock = threading.Lock()

    def _loop_thread(self) -> _LoopThread:
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread()
            return self._runner

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self._loop_thread().run(coro)

    def post(self, on: str = '/', inputs: Any = None, request_size: int = 100,
             parameters: Optional[dict] = None, target_executor: Optional[str] = None,
             return_responses: bool = False, on_done: Optional[Callable] = None,
             on_error: Optional[Callable] = None, on_always: Optional[Callable] = None,
             timeout: Optional[float] = None, prefetch: Optional[int] = None,
             results_in_order: bool = True, continue_on_error: bool = False,
             return_type: Optional[type] = None, max_attempts: int = 1, initial_backoff: float = 0.5,
             max_backoff: float = 2.0, backoff_multiplier: float = 1.5,
             metadata: Optional[Metadata] = None, headers: Optional[dict[str, str]] = None, **kwargs: Any) -> Any:
        """Send `inputs` in requests of `request_size` documents to endpoint `on`; returns the
        documents of all responses (or the responses, with return_responses=True). With
        `on_done` or `on_always`, responses go to the callbacks only and nothing is kept (None is
        returned, as in Jina): inputs from a generator are then sent with flat memory."""
        if kwargs:
            refuse_unknown('post', kwargs, parameters_of(AsyncClient.post), jina_options.POST)
        requests = Requests(build_requests(on, inputs, request_size, parameters, target_executor))
        callbacks = Callbacks(on_done, on_error, on_always, continue_on_error)
        sending = Sending(Backoff(max_attempts, initial_backoff, max_backoff, backoff_multiplier),
                          self._async._call_options(metadata, headers))
        keep = on_done is None and on_always is None
        blocking = getattr(self._async._transport, 'send_one_blocking', None)
        trace = self._async._trace(on)  # here, in the caller's thread: its current span is the parent
        if requests.single is not None and blocking is not None:
            # one request: a blocking call from this thread, no hop through the loop thread
            span, metadata_ = trace
            proto = None
            try:
                proto = _with_retries(lambda: blocking(requests.single, timeout, metadata_ + sending.extra),
                                      sending.backoff)
            finally:
                if span is not None:
                    from plait.observability.tracing import end_span
                    end_span(span, proto is not None and proto.header.status.code == 0)
            response = DataRequest(proto, return_type)
            pending: list[Any] = []
            ok = callbacks.handle(response, pending)
            if pending:
                self._run(_await_all(pending))
            items = [response if return_responses else response.docs] if ok or return_responses else []
        else:
            async def collect() -> list[Any]:
                return [item async for item in self._async._post_requests(
                    requests, callbacks, return_responses, timeout, prefetch, results_in_order, return_type, trace,
                    sending) if keep]

            items = self._run(collect())
        if not keep:
            return None
        if return_responses:
            return items
        if not items:
            from plait.documents import DocumentArray

            return (return_type or DocumentArray)()
        docs = items[0]
        for more in items[1:]:
            docs.extend(more)
        return docs

    def stream_doc(self, on: str, inputs: Any, parameters: Optional[dict] = None,
                   return_type: Optional[type] = None, timeout: Optional[float] = None,
                   metadata: Optional[Metadata] = None, headers: Optional[dict[str, str]] = None,
                   **kwargs: Any) -> Iterator[Any]:
        """AsyncClient.stream_doc as a plain iterator: `for doc in client.stream_doc(...)`."""
        from plait.clients.streaming import blocking

        items = self._async.stream_doc(on, inputs, parameters, return_type, timeout, metadata, headers, **kwargs)
        return blocking(items, self._loop_thread().loop, owner=self)

    # the CRUD shortcuts: post to /index, /search, /update, /delete
    index = partialmethod(post, '/index')
    search = partialmethod(post, '/search')
    update = partialmethod(post, '/update')
    delete = partialmethod(post, '/delete')

    def is_flow_ready(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return self._run(self._async.is_flow_ready(timeout))

    def is_deployment_ready(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return self._run(self._async.is_deployment_ready(timeout))

    def dry_run(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
        return self._run(self._async.dry_run(timeout))

    def status(self, timeout: float = DEFAULT_PROBE_TIMEOUT) -> dict[str, dict[str, str]]:
        return self._run(self._async.status(timeout))

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(self._async.close())
        close_blocking = getattr(self._async._transport, 'close_blocking', None)
        if close_blocking is not None:
            close_blocking()
        self._async.close_tracing()

    def __enter__(self) -> 'Client':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, '_async', None) is not None:
            self.close()


__all__ = ['AsyncClient', 'Client']
