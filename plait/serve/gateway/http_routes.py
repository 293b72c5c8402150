"""The HTTP data routes (`POST /post`, CRUD, exposed endpoints) and how each outcome maps to
an HTTP status.

Every answer of these routes has the same envelope, `{"header", "parameters", "routes",
"data"}`. On failure `header.status` is the StatusProto written whole (`{"code": 1,
"description", "exception": {"name", "args", "stacks", "executor"}}`) and the HTTP status says
what kind of failure it is (`HTTP_STATUS` in outcome.py, beside the gRPC codes of the same
failures): 503 a deployment is down, 504 an executor did not answer in timeout_send, 404 no
executor serves the endpoint (the description lists the served ones), 400 a malformed body (see
below), 422 the wrong shape or types (naming the field), 413 a body over max_body_bytes (see
http_limits) or one an executor refused as too large, 500 the executor raised.

Malformed (400): not UTF-8, not JSON, NaN/Infinity, a key twice in one object, a lone UTF-16
surrogate escape, nesting beyond about 1000 levels; the description says which and where. The
Content-Type is not checked: any body is read as JSON. A path no route serves answers 404 and a
method a route does not take 405, both as FastAPI does (`{"detail": ...}`), the detail naming
the path, the method and the routes there are (see http_app).

Reserved parameters: ``parameters.__results__`` is where executors put the dicts they return. It
is output only: a request carrying it (Jina's HTTP client sends ``{"__results__": {}}`` with every
request) is served with the key dropped, so results always come from the executors. Parameters
are a protobuf Struct: nested over 32 levels, or with numbers out of the range of a double, they
are refused with 422.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from plait.errors import BadRequest
from plait.serve.gateway.core import GatewayCore
from plait.serve.gateway.http_request import build_request, loads, parse_body
from plait.serve.gateway.http_schema import InputEncoder
from plait.serve.gateway.outcome import HTTP_STATUS, Outcome
from plait.wire.join import doc_list_of
from plait.wire.json_codec import docs_json, message_json

CRUD = (('/index', 'POST'), ('/search', 'POST'), ('/update', 'PUT'), ('/delete', 'DELETE'))


class JsonGateway:
    """JSON requests in, JSON answers out (with their HTTP status): what HTTP routes and
    WebSocket text messages share."""

    def __init__(self, core: GatewayCore, logger: logging.Logger | None = None):
        self.core = core
        self.encoder = InputEncoder()
        self.logger = logger or logging.getLogger('plait.gateway')

    async def handle_bytes(self, raw: bytes | str, endpoint: str | None = None) -> tuple[int, dict[str, Any]]:
        try:
            body = loads(raw)
        except BadRequest as e:
            return _answer(Outcome.refused(e))
        return await self.handle(body, endpoint)

    async def handle(self, body: Any, endpoint: str | None = None) -> tuple[int, dict[str, Any]]:
        request_id = ''
        try:
            parsed = parse_body(body, endpoint)
            request_id = parsed.request_id
            await self.core.discover()
            request = build_request(parsed, self.encoder, self.core.schemas())
        except BadRequest as e:
            return _answer(Outcome.refused(e, request_id))
        except RecursionError:  # documents nested deeper than validation or protobuf can follow
            return _answer(Outcome.refused(BadRequest('data: documents nested too deeply to encode; flatten them'),
                                           request_id))
        return _answer(await self.core.process(request))


def _answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON envelope of an outcome; documents only when it succeeded."""
    docs = docs_json(doc_list_of(outcome.response.data)) if outcome.failure is None else None
    return HTTP_STATUS[outcome.failure], message_json(outcome.response, docs)


@dataclass
class DataRoute:
    """One HTTP route that posts to the Flow: `endpoint` None means the body names it (/post)."""

    path: str
    methods: list[str]
    endpoint: str | None
    options: dict[str, Any]


def data_routes(expose_endpoints: dict[str, dict[str, Any]], no_debug: bool, no_crud: bool) -> list[DataRoute]:
    """The data routes of a gateway: exposed endpoints first (they win over CRUD paths)."""
    routes: list[DataRoute] = []
    taken: set[tuple[str, str]] = set()
    for endpoint, raw in (expose_endpoints or {}).items():
        kept = dict(raw)  # checked when the GatewayConfig was made
        methods = [m.upper() for m in kept.pop('methods', None) or ['POST']]
        path = '/' + endpoint.lstrip('/')
        routes.append(DataRoute(path, methods, endpoint, kept))
        taken.update((path, m) for m in methods)
    if not no_debug:
        routes.append(DataRoute('/post', ['POST'], None,
                                {'summary': 'Post documents to any endpoint of the Flow', 'tags': ['Debug']}))
    if not no_crud:
        for path, method in CRUD:
            if (path, method) not in taken:
                routes.append(DataRoute(path, [method], path,
                                        {'summary': f'{method} documents to the {path} endpoint', 'tags': ['CRUD']}))
    return routes


def add_data_routes(app: Any, gateway: JsonGateway, routes: list[DataRoute]) -> None:
    def handler_for(route: DataRoute) -> Any:
        async def handle(request: Request) -> JSONResponse:
            status, body = await gateway.handle_bytes(await request.body(), route.endpoint)
            return JSONResponse(body, status_code=status)

        handle.__name__ = f'post_{route.path.strip("/").replace("/", "_") or "root"}'
        return handle

    for route in routes:
        app.add_api_route(route.path, handler_for(route), methods=route.methods, **route.options)
