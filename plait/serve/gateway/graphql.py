"""GraphQL at `/graphql` (`expose_graphql_endpoint=True`, strawberry): the query and the
mutation `docs(data, execEndpoint, targetExecutor, parameters)` send documents to an endpoint
and return the documents' fields:

    mutation { docs(data: [{text: "hello", tags: {a: 1}}], execEndpoint: "/foo",
                    parameters: {k: "v"}) { id text tags fields } }

`fields` holds every field of a returned document as JSON (for executors' own document types).
No GraphiQL page is served: it would load its scripts from the internet.

Errors: a body that is not JSON (read with the strict rules of http_request.loads: nesting,
NaN, duplicate keys, lone surrogates) answers 400 naming the problem. Everything past that
follows GraphQL's convention: HTTP 200 with `"errors"`; a refused request (the same checks as
`/post`) carries its HTTP status in `errors[].extensions.http_status`.
"""

# no `from __future__ import annotations`: strawberry reads the annotations at runtime
import dataclasses
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from plait.serve.gateway.http_routes import JsonGateway
from plait.serve.gateway.http_schema import BadInput


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

    return strawberry.Schema(query=Query, mutation=Mutation)


def add_graphql_route(app: Any, gateway: JsonGateway) -> None:
    from cross_web import HTTPException
    from strawberry.fastapi import GraphQLRouter

    from plait.serve.gateway.http_request import loads

    class Router(GraphQLRouter):
        """Reads bodies (and GET `variables`) as `/post` does: strict, with a 400 that says why."""

        def parse_json(self, data: str | bytes) -> Any:
            try:
                return loads(data)
            except BadInput as e:
                raise HTTPException(400, str(e)) from None

    app.include_router(Router(build_schema(gateway), graphql_ide=None), prefix='/graphql')
