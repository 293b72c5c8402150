"""The FastAPI application of an HTTP or WebSocket gateway.

Both serve `GET /` (`{}`: the gateway process is up), `/livez`, `/readyz` (the live
readiness view: 200, or 503 naming each replica that is not ready), `/dry_run` (the seeds'
StatusProto JSON, always 200), `/status` and Prometheus `/metrics`. HTTP adds the data routes
(`/post`, CRUD, exposed endpoints; see http_routes), OpenAPI and Swagger UI at `/docs`, and
GraphQL when asked; WebSocket adds the streaming routes of `websocket.py`.
"""

from __future__ import annotations

import inspect
import logging
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from plait.serve.gateway.config import GatewayConfig
from plait.serve.gateway.core import GatewayCore
from plait.wire.json_codec import status_json
from plait.serve.gateway.http_routes import JsonGateway, add_data_routes, data_routes

DEFAULT_TITLE = 'plait gateway'
DEFAULT_DESCRIPTION = ('A plait Flow behind an HTTP gateway. Set `title` and `description` on the Flow '
                       'to change this text.')


def _version() -> str:
    try:
        return metadata.version('plait')
    except metadata.PackageNotFoundError:
        return '0'


def _add_probe_routes(app: Any, core: GatewayCore, no_debug: bool) -> None:
    async def health() -> JSONResponse:
        return JSONResponse({})

    async def readyz() -> JSONResponse:
        # ready as the gRPC `readiness` service says: every shard has a serving replica; the
        # body still names each replica that is down (a degraded but serving Flow is ready)
        ready = core.ready()
        return JSONResponse({'ready': ready, 'not_ready': core.not_ready()}, status_code=200 if ready else 503)

    async def dry_run() -> JSONResponse:
        return JSONResponse(status_json(await core.dry_run()))

    async def status() -> JSONResponse:
        from plait.serve.info import status_info

        return JSONResponse(status_info())

    app.add_api_route('/', health, methods=['GET'], summary='Liveness: the gateway is up', tags=['Health'])
    app.add_api_route('/livez', health, methods=['GET'], summary='Liveness: the gateway is up', tags=['Health'])
    app.add_api_route('/readyz', readyz, methods=['GET'], tags=['Health'],
                      summary='Readiness of the whole Flow, from the live health of every replica')
    app.add_api_route('/dry_run', dry_run, methods=['GET'], tags=['Health'],
                      summary='Send an empty request through the whole Flow; check `code` (0 = success)')
    if not no_debug:
        app.add_api_route('/status', status, methods=['GET'], tags=['Debug'],
                          summary='Versions, platform and environment of the gateway')


def _shown_path(path: str, limit: int = 120) -> str:
    return ascii(path if len(path) <= limit else path[:limit] + '...')


def _add_route_errors(app: Any) -> None:
    """404 and 405 keep FastAPI's `{"detail": ...}` shape, with a detail that names the path,
    the method and what is served (FastAPI's own says only "Not Found")."""
    from starlette.exceptions import HTTPException
    from starlette.routing import Match, Mount

    def served() -> list[str]:
        routes = []
        for route in app.routes:
            path = getattr(route, 'path', None)
            if path is None or isinstance(route, Mount):
                continue
            methods = getattr(route, 'methods', None)
            routes.append(f'{"|".join(sorted(methods)) if methods else "WEBSOCKET"} {path}')
        return routes

    def allowed(scope: dict[str, Any]) -> str:
        """The methods some route takes on the path of `scope` (several routes may share it)."""
        methods = [m for m in ('GET', 'POST', 'PUT', 'DELETE', 'PATCH')
                   if any(route.matches({**scope, 'method': m})[0] == Match.FULL for route in app.routes)]
        return ', '.join(methods) or 'another path'

    async def route_error(request: Any, exc: HTTPException) -> JSONResponse:
        method, path = request.method, _shown_path(request.url.path)
        detail = exc.detail
        if exc.status_code == 404 and detail == 'Not Found':
            detail = f'Not Found: no route serves {method} {path}; this gateway serves {served()}'
        elif exc.status_code == 405 and detail == 'Method Not Allowed':
            detail = f'Method Not Allowed: {method} is not allowed on {path}; use {allowed(request.scope)}'
        return JSONResponse({'detail': detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(HTTPException, route_error)


# FastAPI >= 0.16x records OpenTelemetry spans, metrics and logs of every request by itself;
# plait's own tracing (tracing=True) covers the gateway, so that per-request work is turned off
_NO_FASTAPI_TELEMETRY = ({'telemetry': {'tracing': False, 'metrics': False, 'logs': False, 'operation_spans': False}}
                         if 'telemetry' in inspect.signature(FastAPI.__init__).parameters else {})


def build_app(core: GatewayCore, config: GatewayConfig, websocket: bool = False,
              logger: logging.Logger | None = None, token_check: Any = None) -> Any:
    """`token_check` (plait.auth.TokenCheck): every route but the probes needs a token."""
    from plait.serve.gateway.http_limits import BodyLimitMiddleware

    logger = logger or logging.getLogger('plait.gateway')
    title = config.title or DEFAULT_TITLE
    description = config.description or DEFAULT_DESCRIPTION
    app = FastAPI(title=title, description=description, version=_version(),
                  openapi_url=None, docs_url=None, redoc_url=None, **_NO_FASTAPI_TELEMETRY)
    json_gateway = JsonGateway(core, logger)
    _add_probe_routes(app, core, config.no_debug_endpoints)
    # Prometheus: with monitoring on, /metrics serves the gateway's registry (also on port_monitoring)
    metrics = getattr(core.observer, 'metrics', None)
    if metrics is not None:
        from plait.serve.gateway.http_metrics import add_metrics_route

        add_metrics_route(app, metrics.registry)
    if websocket:
        from plait.serve.gateway.websocket import WebSocketGateway, add_websocket_routes

        add_websocket_routes(app, WebSocketGateway(core, json_gateway, config.prefetch, logger))
    else:
        from plait.serve.gateway.http_openapi import add_docs_routes, build_openapi

        routes = data_routes(config.expose_endpoints, config.no_debug_endpoints, config.no_crud_endpoints)
        add_data_routes(app, json_gateway, routes)

        async def openapi() -> dict[str, Any]:
            await core.discover()
            return build_openapi(app, title, description, _version(), routes, core.schemas())

        add_docs_routes(app, openapi, title)
        if config.expose_graphql_endpoint:
            from plait.serve.gateway.graphql import add_graphql_route

            add_graphql_route(app, json_gateway)
    from plait.serve.gateway.http_stream import add_stream_routes

    add_stream_routes(app, core, json_gateway.encoder, websocket)  # last: it takes only what no route serves
    _add_route_errors(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=config.max_body_bytes)
    if token_check is not None:  # inside CORS: preflights pass, refusals carry CORS headers
        from plait.auth import TokenMiddleware

        app.add_middleware(TokenMiddleware, check=token_check, docs_public=config.public_docs)
    if config.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=['*'], allow_credentials=True,
                           allow_methods=['*'], allow_headers=['*'])
        logger.warning('CORS is enabled: any website can call this gateway')
    if metrics is not None:
        from plait.serve.gateway.http_metrics import HttpMetrics

        app.add_middleware(HttpMetrics, registry=metrics.registry)
    if config.tracing:
        from plait.observability.observers import tracing_middleware

        app.add_middleware(lambda app: tracing_middleware(app))
    return app
