"""The WebSocket transport: connections to `ws(s)://host:port/` with subprotocol `bytes`, each
request a serialized DataRequestProto (the format of Jina's own client, see
plait.serve.gateway.websocket); responses are matched to requests by request_id. A `send` whose
every answer came in leaves its connection open for the next one (no handshake per call; a
connection opened with extra headers, e.g. a trace context, is not reused); a closed
connection, or `b'\\x00'`, ends the server's input. Probes go over plain HTTP(S) on the same
port (`/readyz`, `/`, `/dry_run`, `/status`), which WebSocket gateways also serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from plait.clients.http import HttpTransport, Verify, ssl_context
from plait.errors import InternalNetworkError, RequestTimeout, Unauthenticated
from plait.proto import jina_data_pb2
from plait.streams import Answers, bounded_map
from plait.wire.constants import END_OF_INPUT

DataRequestProto = jina_data_pb2.DataRequestProto
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0  # for the server's close frame, after the last answer
IDLE_MAX = 16  # connections kept open between calls (one per concurrent call, up to this)


class WebSocketTransport:
    def __init__(self, host: str, port: int, tls: bool = False, verify: Verify = True, token: str | None = None):
        self.url = f'{"wss" if tls else "ws"}://{host}:{port}/'
        self._tls = tls
        self._verify = verify
        self._headers = {'Authorization': f'Bearer {token}'} if token else None
        self._http = HttpTransport(host, port, tls, verify, token)
        self._open: set[Any] = set()  # connections of streams a consumer left unfinished
        self._idle: list[Any] = []  # connections whose last call finished, for the next one
        self._idle_loop: asyncio.AbstractEventLoop | None = None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in [*self._open, *(idle if self._idle_loop is asyncio.get_running_loop() else [])]:
            await connection.close()
        self._open.clear()
        await self._http.close()

    def _reuse(self) -> Any:
        """An open connection a finished call left, on this loop, or None."""
        from websockets.protocol import State

        if self._idle_loop is not asyncio.get_running_loop():
            for connection in self._idle:  # of a loop that has ended: nothing to close it with
                if connection.transport is not None:
                    connection.transport.abort()
            self._idle, self._idle_loop = [], asyncio.get_running_loop()
        while self._idle:
            connection = self._idle.pop()
            if connection.state is State.OPEN:
                return connection
        return None

    def _lost(self, detail: str) -> InternalNetworkError:
        return InternalNetworkError(f'lost the websocket connection to {self.url}: {detail}', addresses=[self.url])

    async def stream_doc(self, request: jina_data_pb2.SingleDocumentRequestProto, timeout: float | None,
                         extra: tuple = ()) -> AsyncIterator[jina_data_pb2.SingleDocumentRequestProto]:
        """The answers of a streaming endpoint over `/stream` (one connection per stream: the
        request as JSON, then `update` / `end` / `error` messages); closing this closes it."""
        import json

        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

        from plait.clients.streaming import deadline_of, replies_of_events, stream_body, until

        url = self.url + 'stream'
        ssl = ssl_context(self._verify) if self._tls else None
        deadline = deadline_of(timeout)

        async def events(connection: Any) -> AsyncIterator[tuple[str, Any]]:
            async for message in connection:
                body = json.loads(message)
                yield body.get('event', ''), body.get('data')

        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):
                    connection = await stack.enter_async_context(connect(
                        url, ssl=ssl, max_size=None, proxy=None, open_timeout=CONNECT_TIMEOUT,
                        additional_headers={**(self._headers or {}), **dict(extra)} or None,
                        close_timeout=CLOSE_TIMEOUT))
                    await connection.send(json.dumps({'exec_endpoint': request.header.exec_endpoint or '/',
                                                      **stream_body(request, envelope=True)}))
                async for reply in until(deadline, replies_of_events(events(connection), request, url), url):
                    yield reply
        except TimeoutError:
            raise RequestTimeout(f'{url} did not answer within {timeout} s') from None
        except InvalidStatus as e:
            if e.response.status_code == 401:
                raise Unauthenticated(url) from None
            raise InternalNetworkError(f'cannot open a websocket to {url}: {e}', addresses=[url]) from None
        except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed) as e:
            raise self._lost(str(e) or type(e).__name__) from None

    async def send(self, requests: Iterable[DataRequestProto], prefetch: int, timeout: float | None,
                   results_in_order: bool, extra: tuple = ()) -> AsyncIterator[DataRequestProto]:
        """Answers to `requests` (taken lazily, at most `prefetch` unanswered) over one
        connection; `extra` (key, value) pairs go with its opening handshake as headers."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

        ssl = ssl_context(self._verify) if self._tls else None
        connection = None if extra else self._reuse()
        try:
            connection = connection or await asyncio.wait_for(
                connect(self.url, subprotocols=['bytes'], ssl=ssl, max_size=None, proxy=None,
                        additional_headers={**(self._headers or {}), **dict(extra)} or None,
                        open_timeout=None, close_timeout=CLOSE_TIMEOUT), timeout or CONNECT_TIMEOUT)
        except TimeoutError:
            raise InternalNetworkError(f'cannot open a websocket to {self.url}: no handshake answer within '
                                       f'{timeout or CONNECT_TIMEOUT} s', addresses=[self.url]) from None
        except InvalidStatus as e:
            if e.response.status_code == 401:
                raise Unauthenticated(self.url) from None
            raise InternalNetworkError(f'cannot open a websocket to {self.url}: {e}', addresses=[self.url]) from None
        except (OSError, InvalidHandshake, InvalidURI) as e:
            raise InternalNetworkError(f'cannot open a websocket to {self.url}: {str(e) or type(e).__name__}',
                                       addresses=[self.url]) from None
        self._open.add(connection)
        answers: Answers[DataRequestProto] = Answers()
        sending = asyncio.Lock()  # one message at a time

        async def one(request: DataRequestProto) -> DataRequestProto:
            answer = answers.expect(request.header.request_id)
            try:
                async with sending:
                    await connection.send(request.SerializeToString())
            except ConnectionClosed:
                pass  # the reader reports it
            return await answer

        async def read() -> None:
            deadline = asyncio.get_running_loop().time() + timeout if timeout else None
            received = 0
            try:
                while True:  # until every answer is in (then this reader is cancelled)
                    left = None if deadline is None else max(deadline - asyncio.get_running_loop().time(), 0)
                    message = await asyncio.wait_for(connection.recv(), left)
                    if isinstance(message, str):
                        raise self._lost('the server sent text; expected DataRequestProto bytes')
                    response = DataRequestProto.FromString(message)
                    received += 1
                    answers.resolve(response.header.request_id, response)
            except TimeoutError:
                answers.fail(RequestTimeout(f'{self.url} did not answer every request within {timeout} s '
                                            f'({received} answered)'))
            except ConnectionClosed as e:
                reason = f'code {e.rcvd.code} {e.rcvd.reason!r}' if e.rcvd else 'no close frame'
                answers.fail(self._lost(f'closed ({reason}) after {received} responses'))
            except Exception as e:  # noqa: BLE001  (handed to the requests waiting)
                answers.fail(e)

        reader = asyncio.ensure_future(read())
        finished = False
        try:
            async with contextlib.aclosing(bounded_map(requests, one, prefetch, results_in_order)) as responses:
                async for response in responses:
                    yield response
            finished = True
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._open.discard(connection)
            if finished and not extra and len(self._idle) < IDLE_MAX:
                self._idle.append(connection)  # every request answered: ready for the next call
            else:
                if finished:
                    with contextlib.suppress(ConnectionClosed):
                        await connection.send(END_OF_INPUT)  # the input ends here
                elif connection.transport is not None:
                    connection.transport.abort()  # a server that stopped answering gets no close handshake
                await connection.close()

    async def is_ready(self, kind: str, timeout: float) -> bool:
        return await self._http.is_ready(kind, timeout)

    async def dry_run(self, timeout: float) -> bool:
        return await self._http.dry_run(timeout)

    async def status_info(self, timeout: float) -> dict[str, Any]:
        return await self._http.status_info(timeout)
