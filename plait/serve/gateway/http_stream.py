"""Streaming endpoints over HTTP and WebSocket (the gRPC face and the Flow's part are in
plait.serve.gateway.streaming).

HTTP, as Jina's HTTP gateway serves them: `GET /<endpoint>` of a generator endpoint answers
Server-Sent Events. The input document is the JSON body, or the query parameters as its fields
(`GET /gen?text=hi`); a body `{"data": {...}, "parameters": {...}}` also carries parameters.
Each document the generator yields is an `update` event whose data is the document as JSON;
the stream closes with an `end` event. A failure after the stream has begun is an `error`
event whose data is the status (`{"code": 1, "description": ..., "exception": {...}}`), and
the stream closes without `end`. A caller that disconnects cancels the generator.

    event: update
    data: {"id": "...", "text": "hi-0"}

    event: end

WebSocket (Jina has no WebSocket streaming): on route `/stream`, the client sends one JSON
message `{"exec_endpoint": "/gen", "data": {...}, "parameters": {...}}`; the server sends a
text message `{"event": "update", "data": {...}}` per document, then `{"event": "end"}` (or
`{"event": "error", "data": <status>}`) and closes with 1000. Closing the socket cancels the
generator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Match, Route
from starlette.websockets import WebSocket, WebSocketDisconnect

from plait.errors import BadRequest
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.http_request import loads
from plait.serve.gateway.http_schema import InputEncoder
from plait.serve.gateway.streaming import SingleDocumentRequestProto, streams_endpoint
from plait.wire.join import DataContentProto, doc_list_in
from plait.wire.json_codec import doc_json, dumps, status_json
from plait.wire.messages import StatusProto, dict_to_struct, error_status, new_request_id

ERROR = StatusProto.ERROR
FIRST_MESSAGE_TIMEOUT = 30.0  # seconds a WebSocket stream's client has to send its request
SSE_HEADERS = {'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no'}


def sse(event: str, data: Any = None) -> bytes:
    """One Server-Sent Event, with CRLF line ends as Jina writes them."""
    text = f'event: {event}\r\n'
    if data is not None:
        text += f'data: {dumps(data)}\r\n'
    return (text + '\r\n').encode()


def split_input(body: Any) -> tuple[Any, dict[str, Any]]:
    """(the document's fields, parameters) of a streaming request body: the document itself
    (as Jina's client sends it) or `{"data": {...}, "parameters": {...}}`."""
    if isinstance(body, dict) and isinstance(body.get('data'), dict) and set(body) <= {'data', 'parameters',
                                                                                   'exec_endpoint', 'header'}:
        parameters = body.get('parameters') or {}
        if not isinstance(parameters, dict):
            raise BadRequest(f'parameters must be a JSON object, got {type(parameters).__name__}')
        return body['data'], parameters
    return body, {}


def stream_request(core: GatewayCore, encoder: InputEncoder, endpoint: str, values: Any,
                   parameters: dict[str, Any]) -> SingleDocumentRequestProto:
    """The request of one stream, its document validated against the endpoint's input type."""
    request = SingleDocumentRequestProto()
    request.header.request_id = new_request_id()
    request.header.exec_endpoint = endpoint
    try:
        dict_to_struct(parameters, request.parameters)
    except (TypeError, ValueError, OverflowError) as e:
        raise BadRequest(f'parameters: {e}') from None
    content = DataContentProto.FromString(encoder.encode(core.schemas(), endpoint, [values]))
    request.document.CopyFrom(doc_list_in(content).docs[0])
    return request


async def events(core: GatewayCore, request: SingleDocumentRequestProto) -> AsyncIterator[tuple[str, Any]]:
    """('update', document JSON) per document, then ('end', None), or ('error', status JSON)."""
    async with contextlib.aclosing(core.stream_doc(request)) as replies:
        async for reply in replies:
            if reply.header.status.code == ERROR:
                yield 'error', status_json(reply.header.status)
                return
            yield 'update', doc_json(reply.document)
    yield 'end', None


class StreamRoute(Route):
    """`GET /<endpoint>` for each generator endpoint of the Flow. It matches only paths that name
    one (known after endpoint discovery; before it, any GET that no other route took), so every
    other path keeps its 404 or 405."""

    def __init__(self, core: GatewayCore, encoder: InputEncoder):
        async def endpoint(request: Request) -> Any:  # a plain function: Starlette wraps it as an endpoint
            return await self.serve(request)

        super().__init__('/{endpoint:path}', endpoint, methods=['GET'], include_in_schema=False)
        self.core = core
        self.encoder = encoder

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        match, child = super().matches(scope)
        if match is not Match.NONE and streams_endpoint(self.core.graph, scope['path']) is False:
            return Match.NONE, {}
        return match, child

    async def serve(self, request: Request) -> Any:
        endpoint = request.url.path
        await self.core.discover()
        if not streams_endpoint(self.core.graph, endpoint):
            return JSONResponse({'detail': f'Not Found: {endpoint} is no streaming endpoint of this Flow'}, 404)
        try:
            raw = await request.body()
            values, parameters = split_input(loads(raw)) if raw.strip() else (dict(request.query_params), {})
            stream = stream_request(self.core, self.encoder, endpoint, values, parameters)
        except BadRequest as e:
            return JSONResponse({'detail': str(e)}, 400)

        async def body() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events(self.core, stream)) as items:
                async for event, data in items:
                    yield sse(event, data)

        return StreamingResponse(body(), media_type='text/event-stream', headers=SSE_HEADERS)


async def websocket_stream(core: GatewayCore, encoder: InputEncoder, websocket: WebSocket) -> None:
    """One stream per connection on `/stream` (see the module's text)."""
    await websocket.accept()
    try:
        try:
            try:
                first = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_TIMEOUT)
            except TimeoutError:
                raise BadRequest(f'no request within {FIRST_MESSAGE_TIMEOUT:g} s of connecting') from None
            body = loads(first)
            if not isinstance(body, dict):
                raise BadRequest('send one JSON object: {"exec_endpoint": ..., "data": {...}, "parameters": {...}}')
            endpoint = body.get('exec_endpoint') or '/'
            values, parameters = split_input({k: v for k, v in body.items() if k != 'exec_endpoint'})
            await core.discover()
            stream = stream_request(core, encoder, endpoint, values, parameters)
        except BadRequest as e:
            error = status_json(error_status(str(e), name='BadRequest'))
            await websocket.send_text(dumps({'event': 'error', 'data': error}))
            await websocket.close(1000)
            return
        async with contextlib.aclosing(events(core, stream)) as items:
            async for event, data in items:
                message = {'event': event} if data is None else {'event': event, 'data': data}
                await websocket.send_text(dumps(message))
        await websocket.close(1000)
    except (WebSocketDisconnect, RuntimeError, OSError):  # the client left: the stream is closed above
        pass


def add_stream_routes(app: Any, core: GatewayCore, encoder: Optional[InputEncoder] = None,
                      websocket: bool = False) -> None:
    """SSE on `GET /<endpoint>` for an HTTP gateway, `/stream` for a WebSocket one. Added after
    every other route: the SSE route only takes what no other route serves."""
    encoder = encoder or InputEncoder()
    if websocket:
        async def stream(websocket: WebSocket) -> None:
            await websocket_stream(core, encoder, websocket)

        app.add_api_websocket_route('/stream', stream, name='stream_doc')
    else:
        app.router.routes.append(StreamRoute(core, encoder))
