"""The WebSocket face of the gateway (`protocol='websocket'`): one connection carries a stream
of requests and their responses, in request order.

Message format, chosen to interoperate with Jina 3.x clients and gateways:

- Route ``/``. A **binary** message is one serialized ``DataRequestProto`` (what Jina's own
  client sends, with subprotocol ``bytes``); its response is a serialized ``DataRequestProto``.
  The one-byte message ``b'\\x00'`` (Jina's end-of-input, ``bytes(True)``) ends the input.
- A **text** message is a JSON request as for HTTP ``POST /post`` (``{"data": [...],
  "exec_endpoint": "/", "parameters": {}}``, camelCase accepted); its response is the JSON
  envelope of ``/post``. The message ``{}`` ends the input (as in Jina's JSON subprotocol).
- Each response is written in the kind of its request, so the subprotocol (``bytes`` or
  ``json``, echoed when the client asks for it) only matters to the client.
- At most ``prefetch`` requests per connection are in flight. After end-of-input the server
  sends what is outstanding and closes with 1000. Failures are answered per request
  (``header.status`` ERROR, as on gRPC), never by dropping the connection; a message that cannot
  be read gets an error response too.
- Route ``/dry_run``: the server sends the dry-run StatusProto (bytes with subprotocol
  ``bytes``, else JSON ``{"code", "description", "exception"}``) and closes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from plait.errors import BadRequest
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.http_request import loads
from plait.serve.gateway.http_routes import JsonGateway
from plait.serve.gateway.outcome import Outcome
from plait.streams import bounded_map
from plait.wire.constants import END_OF_INPUT
from plait.wire.json_codec import dumps, error_json, message_json, status_json
from plait.wire.messages import error_status

SUBPROTOCOLS = ('bytes', 'json')


def _subprotocol(websocket: Any) -> str | None:
    requested = websocket.scope.get('subprotocols') or []
    return next((p for p in requested if p in SUBPROTOCOLS), None)


class WebSocketGateway:
    def __init__(self, core: GatewayCore, json_gateway: JsonGateway, prefetch: int,
                 logger: logging.Logger | None = None):
        self.core = core
        self.json = json_gateway
        self.prefetch = prefetch
        self.logger = logger or logging.getLogger('plait.gateway')

    async def _answer_bytes(self, data: bytes) -> tuple[str, Any]:
        return 'bytes', (await self.core.process_bytes(data)).response.SerializeToString()

    async def _safe(self, kind: str, answer: Any) -> tuple[str, Any]:
        """An unexpected failure still gets an answer, in the kind of its request."""
        try:
            return await answer
        except Exception as e:
            self.logger.exception('websocket request failed')
            status = error_status(e)
            if kind == 'bytes':
                failed = RawDataRequest()
                failed.header.status.CopyFrom(status)
                return 'bytes', failed.SerializeToString()
            return 'text', dumps(error_json(status))

    async def _answer_json(self, body: Any) -> tuple[str, Any]:
        if isinstance(body, BadRequest):
            return 'text', dumps(message_json(Outcome.refused(body).response, None))
        return 'text', dumps((await self.json.handle(body))[1])

    async def stream(self, websocket: WebSocket) -> None:
        """Serve one connection on `/` until end-of-input or until the client goes away."""
        await websocket.accept(subprotocol=_subprotocol(websocket))
        ended = False

        async def messages() -> AsyncIterator[tuple[str, Any]]:
            nonlocal ended
            while True:
                message = await websocket.receive()
                if message['type'] == 'websocket.disconnect':
                    raise WebSocketDisconnect(message.get('code', 1000))
                data, text = message.get('bytes'), message.get('text')
                if data is not None:
                    if data == END_OF_INPUT:
                        ended = True
                        return
                    yield 'bytes', data
                    continue
                try:
                    body: Any = loads(text or '')
                except BadRequest as e:
                    body = e
                if body == {}:
                    ended = True
                    return
                yield 'text', body

        async def answer(message: tuple[str, Any]) -> tuple[str, Any]:
            kind, payload = message
            if kind == 'bytes':
                return await self._safe('bytes', self._answer_bytes(payload))
            return await self._safe('text', self._answer_json(payload))

        try:
            async with contextlib.aclosing(bounded_map(messages(), answer, self.prefetch, in_order=True)) as answers:
                async for kind, payload in answers:
                    if kind == 'bytes':
                        await websocket.send_bytes(payload)
                    else:
                        await websocket.send_text(payload)
            if ended:
                await websocket.close(1000)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:  # the client went away mid-stream
            self.logger.debug('websocket client left: %r', e)

    async def dry_run(self, websocket: WebSocket) -> None:
        subprotocol = _subprotocol(websocket)
        await websocket.accept(subprotocol=subprotocol)
        status = await self.core.dry_run()
        if subprotocol == 'bytes':
            await websocket.send_bytes(status.SerializeToString())
        else:
            await websocket.send_text(dumps(status_json(status)))
        await websocket.close(1000)


def add_websocket_routes(app: Any, gateway: WebSocketGateway) -> None:
    app.add_api_websocket_route('/', gateway.stream, name='stream')
    app.add_api_websocket_route('/dry_run', gateway.dry_run, name='dry_run_ws')
