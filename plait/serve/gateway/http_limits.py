"""An ASGI middleware that refuses request bodies over `max_body_bytes` with 413, whether the
size is announced (Content-Length) or only found while reading (chunked uploads)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from plait.errors import PlaitError
from plait.wire.json_codec import error_json
from plait.wire.messages import error_status


class BodyTooLarge(PlaitError):
    """A body grew over the limit while being read."""


class BodyLimitMiddleware:
    def __init__(self, app: Callable, max_body_bytes: int):
        self.app = app
        self.limit = max_body_bytes

    def _message(self, size: str) -> bytes:
        status = error_status(f'the request body ({size}) is over the limit of {self.limit} bytes '
                              f'(gateway option max_body_bytes)', name='BadRequest')
        return json.dumps(error_json(status), separators=(',', ':')).encode()

    async def _refuse(self, send: Callable, size: str) -> None:
        body = self._message(size)
        await send({'type': 'http.response.start', 'status': 413,
                    'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode()),
                                (b'connection', b'close')]})
        await send({'type': 'http.response.body', 'body': body})

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope['type'] != 'http' or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get('headers') or ():
            if name == b'content-length' and value.isdigit() and int(value) > self.limit:
                await self._refuse(send, f'{int(value)} bytes')
                return
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message['type'] == 'http.request':
                received += len(message.get('body', b''))
                if received > self.limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message['type'] == 'http.response.start':
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, f'more than {self.limit} bytes')
