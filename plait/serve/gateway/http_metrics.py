"""Prometheus metrics of the HTTP gateway: requests and latency per route, served at
`/metrics`. Each app has its own registry, so several gateways in one process never clash."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


class HttpMetrics:
    """An ASGI middleware counting requests by (method, route, status) and timing them."""

    def __init__(self, app: Callable, registry: CollectorRegistry):
        self.app = app
        self.requests = Counter('plait_gateway_http_requests', 'HTTP requests answered by the gateway',
                                ('method', 'path', 'status'), registry=registry)
        self.latency = Histogram('plait_gateway_http_request_duration_seconds',
                                 'Time to answer an HTTP request', ('method', 'path'), registry=registry)
        self.websockets = Counter('plait_gateway_websocket_connections', 'WebSocket connections accepted',
                                  ('path',), registry=registry)

    @staticmethod
    def _path(scope: dict[str, Any]) -> str:
        """The route template (bounded label values), not the raw path."""
        route = scope.get('route')
        if route is not None and getattr(route, 'path', None):
            return route.path
        return 'static' if scope.get('path', '').startswith('/docs/static') else 'unmatched'

    async def _websocket(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        """Count a connection when it is accepted: routing has set the route by then, so the
        label is its template (a client trying random paths cannot grow the label set)."""

        async def counting_send(message: dict[str, Any]) -> None:
            if message['type'] == 'websocket.accept':
                self.websockets.labels(self._path(scope)).inc()
            await send(message)

        await self.app(scope, receive, counting_send)

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope['type'] == 'websocket':
            await self._websocket(scope, receive, send)
            return
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def recording_send(message: dict[str, Any]) -> None:
            if message['type'] == 'http.response.start':
                status[0] = message['status']
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path = self._path(scope)
            self.latency.labels(scope['method'], path).observe(time.perf_counter() - start)
            self.requests.labels(scope['method'], path, str(status[0])).inc()


def add_metrics_route(app: Any, registry: CollectorRegistry) -> None:
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route('/metrics', metrics, methods=['GET'], summary='Prometheus metrics', tags=['Debug'],
                      include_in_schema=False)
