"""OpenAPI at `/openapi.json`, with each data route's request and response schemas taken from
the executors' document types, and Swagger UI at `/docs` served entirely from this server
(the swagger-ui dist files of the `swagger-ui-bundle-v2` package), so it works offline.

The schema is built on request, after endpoint discovery: routes are fixed when the server
starts, but the executors' types are known only once they answer."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse

from plait.serve.gateway.http_routes import DataRoute
from plait.serve.gateway.http_schema import input_schema, output_schema
from plait.wire.constants import DRY_RUN_ENDPOINT

STATIC = '/docs/static'


def _document_schema() -> dict[str, Any]:
    from plait.documents import Document

    return Document.model_json_schema()


def _rewrite_refs(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == '$ref' and isinstance(value, str) and value.startswith(('#/$defs/', '#/definitions/')):
                name = value.rsplit('/', 1)[-1]
                out[key] = f'#/components/schemas/{names.get(name, name)}'
            else:
                out[key] = _rewrite_refs(value, names)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, names) for v in node]
    return node


class _Components:
    """components/schemas of the spec: adds JSON schemas under unique names, reusing equal ones."""

    def __init__(self, schemas: dict[str, Any]):
        self.schemas = schemas

    def _name_for(self, name: str, schema: Any) -> str:
        candidate, n = name, 1
        while candidate in self.schemas and self.schemas[candidate] != schema:
            n += 1
            candidate = f'{name}_{n}'
        return candidate

    def add(self, schema: dict[str, Any], fallback: str) -> dict[str, str]:
        schema = copy.deepcopy(schema)
        defs = schema.pop('$defs', None) or schema.pop('definitions', None) or {}
        names: dict[str, str] = {}
        for name in defs:  # names first: definitions may refer to one another
            names[name] = self._name_for(name, _rewrite_refs(defs[name], {}))
        for name, definition in defs.items():
            self.schemas[names[name]] = _rewrite_refs(definition, names)
        body = _rewrite_refs(schema, names)
        name = self._name_for(str(schema.get('title') or fallback), body)
        self.schemas[name] = body
        return {'$ref': f'#/components/schemas/{name}'}


def _one_of(refs: list[dict[str, str]]) -> dict[str, Any]:
    unique = [json.loads(r) for r in dict.fromkeys(json.dumps(r, sort_keys=True) for r in refs)]
    return unique[0] if len(unique) == 1 else {'anyOf': unique}


def _request_schema(doc: dict[str, Any], endpoints: list[str] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        'data': {'anyOf': [{'type': 'array', 'items': doc},
                           {'type': 'object', 'properties': {'docs': {'type': 'array', 'items': doc}},
                            'required': ['docs']}],
                 'description': 'The documents: a list, or {"docs": [...]}'},
        'parameters': {'type': 'object', 'additionalProperties': True, 'default': {},
                       'description': 'Passed to the executors as `parameters`'},
        'target_executor': {'type': 'string', 'description': 'Regular expression of the executors to send to '
                                                             '(targetExecutor also accepted)'},
    }
    if endpoints is not None:
        exec_endpoint: dict[str, Any] = {'type': 'string', 'default': '/',
                                         'description': 'The executor endpoint (execEndpoint also accepted)'}
        if endpoints:
            exec_endpoint['examples'] = endpoints
        properties['exec_endpoint'] = exec_endpoint
    return {'type': 'object', 'properties': properties}


def _response_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return {'type': 'object', 'properties': {
        'header': {'type': 'object', 'description': 'request_id, exec_endpoint, status (on failure)...'},
        'parameters': {'type': 'object', 'additionalProperties': True},
        'routes': {'type': 'array', 'items': {'type': 'object'}},
        'data': {'type': 'array', 'items': doc},
    }}


_STATUS = {'type': 'object', 'properties': {
    'code': {'type': 'integer', 'description': '0 = SUCCESS, 1 = ERROR'},
    'description': {'type': 'string'},
    'exception': {'anyOf': [{'type': 'null'}, {'type': 'object', 'properties': {
        'name': {'type': 'string'}, 'args': {'type': 'array', 'items': {'type': 'string'}},
        'stacks': {'type': 'array', 'items': {'type': 'string'}}, 'executor': {'type': 'string'}}}]}}}
_ERRORS = {'404': 'No executor serves this endpoint', '413': 'The body is over max_body_bytes',
           '400': 'Malformed JSON', '422': 'A field has the wrong shape or type',
           '500': 'An executor raised', '503': 'A deployment is down', '504': 'An executor timed out'}


def build_openapi(app: Any, title: str, description: str, version: str, routes: list[DataRoute],
                  schemas: dict[str, Any]) -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi

    spec = get_openapi(title=title, version=version, description=description, routes=app.routes)
    components = _Components(spec.setdefault('components', {}).setdefault('schemas', {}))
    components.schemas['Status'] = _STATUS
    error = {'type': 'object', 'properties': {
        'header': {'type': 'object', 'properties': {'status': {'$ref': '#/components/schemas/Status'}}}}}
    components.schemas['ErrorResponse'] = error
    served = sorted(e for e in schemas if e != DRY_RUN_ENDPOINT) or None
    document = _document_schema()
    for route in routes:
        endpoints = [route.endpoint] if route.endpoint else (served or ['/'])
        inputs = [components.add(input_schema(schemas, e) or document, 'Document') for e in endpoints]
        outputs = [components.add(output_schema(schemas, e) or document, 'Document') for e in endpoints]
        for method in route.methods:
            operation = spec.get('paths', {}).get(route.path, {}).get(method.lower())
            if operation is None:
                continue
            body = _request_schema(_one_of(inputs), None if route.endpoint else [e for e in served or []])
            operation['requestBody'] = {'required': True, 'content': {'application/json': {'schema': body}}}
            responses = {'200': {'description': 'The documents the Flow returned',
                                 'content': {'application/json': {'schema': _response_schema(_one_of(outputs))}}}}
            for code, text in _ERRORS.items():
                responses[code] = {'description': text, 'content': {'application/json': {
                    'schema': {'$ref': '#/components/schemas/ErrorResponse'}}}}
            operation['responses'] = responses
    _add_streaming_paths(spec, components, schemas)
    return spec


def _add_streaming_paths(spec: dict[str, Any], components: '_Components', schemas: dict[str, Any]) -> None:
    """`GET /<endpoint>` of each generator endpoint: Server-Sent Events (plait.serve.gateway.http_stream)."""
    for endpoint, entry in sorted(schemas.items()):
        if not (isinstance(entry, dict) and entry.get('is_generator')) or endpoint == DRY_RUN_ENDPOINT:
            continue
        document = input_schema(schemas, endpoint) or _document_schema()
        fields = document.get('properties', {})
        parameters = [{'name': name, 'in': 'query', 'required': False,
                       'schema': {'type': field['type']} if isinstance(field.get('type'), str) else {}}
                      for name, field in sorted(fields.items()) if name != 'id']
        output = components.add(output_schema(schemas, endpoint) or _document_schema(), 'Document')
        spec.setdefault('paths', {}).setdefault('/' + endpoint.strip('/'), {})['get'] = {
            'summary': f'Stream {endpoint}: Server-Sent Events', 'tags': ['Streaming'],
            'operationId': f'stream_{endpoint.strip("/").replace("/", "_") or "default"}',
            'description': ('The input document as query parameters, or as the JSON body (with parameters: '
                            '`{"data": {...}, "parameters": {...}}`). Each document the generator yields is an '
                            '`update` event (data: the document as JSON); the stream closes with an `end` event, '
                            'or an `error` event whose data is the status.'),
            'parameters': parameters,
            'responses': {'200': {'description': '`event: update` per document, then `event: end`',
                                  'content': {'text/event-stream': {'schema': output}}},
                          '400': {'description': 'The document has a field of the wrong shape or type'}}}


def add_docs_routes(app: Any, openapi: Any, title: str) -> None:
    """`/openapi.json` (from the async `openapi()`), Swagger UI at `/docs` and its assets."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(STATIC, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name='swagger-ui')

    async def openapi_json() -> JSONResponse:
        return JSONResponse(await openapi())

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get('root_path', '')
        return get_swagger_ui_html(openapi_url=f'{root}/openapi.json', title=f'{title} - Swagger UI',
                                   swagger_js_url=f'{root}{STATIC}/swagger-ui-bundle.js',
                                   swagger_css_url=f'{root}{STATIC}/swagger-ui.css',
                                   swagger_favicon_url=f'{root}{STATIC}/favicon-32x32.png',
                                   swagger_ui_parameters={'validatorUrl': None})

    app.add_api_route('/openapi.json', openapi_json, methods=['GET'], include_in_schema=False)
    app.add_api_route('/docs', docs, methods=['GET'], include_in_schema=False)
