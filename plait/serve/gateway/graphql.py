"""GraphQL at `/graphql` (`expose_graphql_endpoint=True`, strawberry): the query and the
mutation `docs(data, execEndpoint, targetExecutor, parameters)` send documents to an endpoint
and return the documents' fields:

    mutation { docs(data: [{text: "hello", tags: {a: 1}}], execEndpoint: "/foo",
                    parameters: {k: "v"}) { id text tags fields } }

`fields` holds every field of a returned document as JSON (for executors' own document types).
No GraphiQL page is served: it would load its scripts from the internet.

Errors: a body that is not JSON (read with the strict rules of http_request.loads: nesting,
NaN, duplicate keys, lone surrogates) answers 400 naming the problem, a query over
MAX_QUERY_CHARS 413. Everything past that follows GraphQL's convention: HTTP 200 with
`"errors"`; a refused request (the same checks as `/post`) carries its HTTP status in
`errors[].extensions.http_status`. Queries are bounded so that one request cannot hold the
gateway's event loop for seconds or fan out into many Flow requests: at most MAX_TOKENS tokens
(pass many documents as variables), MAX_ALIASES aliases, MAX_DEPTH levels. Errors are logged
at debug level only: they are the client's, and a hostile query would flood the log.
"""

# no `from __future__ import annotations`: strawberry reads the annotations at runtime
import dataclasses
import functools
import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.scalars import JSON

from plait.serve.gateway.http_routes import JsonGateway
from plait.errors import BadRequest

MAX_QUERY_CHARS = 1 << 20
MAX_TOKENS = 20_000
MAX_ALIASES = 10
MAX_DEPTH = 10
_logger = logging.getLogger('plait.gateway.graphql')


@strawberry.input(description='A document to send')
class DocumentInput:
    id: str | None = None
    text: str | None = None
    uri: str | None = None
    mime_type: str | None = None
    parent_id: str | None = None
    tags: JSON | None = None
    embedding: list[float] | None = None
    fields: JSON | None = strawberry.field(default=None, description='More fields, as a JSON object')


@strawberry.type(description='A document the Flow returned')
class DocumentOutput:
    id: str | None
    text: str | None
    uri: str | None
    mime_type: str | None
    parent_id: str | None
    tags: JSON | None
    embedding: list[float | None] | None
    fields: JSON = strawberry.field(description='Every field of the document')


_NAMED = ('id', 'text', 'uri', 'mime_type', 'parent_id', 'tags', 'embedding')


def _to_json(doc: DocumentInput) -> dict[str, Any]:
    values = {k: v for k, v in dataclasses.asdict(doc).items() if v is not None and k != 'fields'}
    if isinstance(doc.fields, dict):
        values = {**doc.fields, **values}
    return values


def _from_json(doc: dict[str, Any]) -> DocumentOutput:
    named = {k: doc.get(k) for k in _NAMED}
    if not isinstance(named['embedding'], list):
        named['embedding'] = None
    return DocumentOutput(**named, fields=doc)


def build_schema(gateway: JsonGateway) -> strawberry.Schema:
    async def docs(data: list[DocumentInput] | None = None, exec_endpoint: str = '/',
                   target_executor: str | None = None,
                   parameters: JSON | None = None) -> list[DocumentOutput]:
        body = {'data': [_to_json(d) for d in data or []], 'exec_endpoint': exec_endpoint,
                'parameters': parameters or {}, 'target_executor': target_executor}
        status, answer = await gateway.handle(body)
        if status != 200:
            raise GraphQLError(answer['header']['status']['description'], extensions={'http_status': status})
        return [_from_json(d) for d in answer['data'] or []]

    @strawberry.type
    class Query:
        docs_: list[DocumentOutput] = strawberry.field(resolver=docs, name='docs',
                                                       description='Send documents to an endpoint')

    @strawberry.type
    class Mutation:
        docs_: list[DocumentOutput] = strawberry.mutation(resolver=docs, name='docs',
                                                          description='Send documents to an endpoint')

    return _Schema(query=Query, mutation=Mutation, extensions=[
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        functools.partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        functools.partial(QueryDepthLimiter, max_depth=MAX_DEPTH)])


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            _logger.debug('graphql error: %.200s', error.message)


def add_graphql_route(app: Any, gateway: JsonGateway) -> None:
    from cross_web import HTTPException
    from strawberry.fastapi import GraphQLRouter

    from plait.serve.gateway.http_request import loads

    class Router(GraphQLRouter):
        """Reads bodies (and GET `variables`) as `/post` does: strict, with a 400 that says why."""

        def parse_json(self, data: str | bytes) -> Any:
            try:
                body = loads(data)
            except BadRequest as e:
                raise HTTPException(400, str(e)) from None
            query = body.get('query') if isinstance(body, dict) else None
            if isinstance(query, str) and len(query) > MAX_QUERY_CHARS:
                raise HTTPException(413, f'the GraphQL query has {len(query)} characters, over the limit of '
                                         f'{MAX_QUERY_CHARS}: pass the documents as variables')
            return body

    app.include_router(Router(build_schema(gateway), graphql_ide=None), prefix='/graphql')
