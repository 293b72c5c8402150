"""Reading a JSON request body (HTTP `/post`, CRUD and exposed endpoints, WebSocket text
messages) into a RawDataRequest for GatewayCore.

Accepted body, with snake_case or camelCase keys (what Jina's clients and curl users send):
``{"data": [docs] | {"docs": [docs]} | doc, "parameters": {}, "exec_endpoint": "/",
"target_executor": "", "header": {"request_id", "exec_endpoint", "target_executor"}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.serve.gateway.http_schema import BadInput, InputEncoder, MalformedBody
from plait.serve.messages import dict_to_struct, new_request_id


@dataclass
class JsonRequest:
    endpoint: str
    docs: list[Any] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    target_executor: str | None = None
    request_id: str = ''


def _pick(body: dict[str, Any], snake: str, camel: str) -> Any:
    return body[snake] if body.get(snake) is not None else body.get(camel)


def _string(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadInput(f'{name} must be a string, got {type(value).__name__}')


def loads(raw: bytes | str) -> Any:
    """json.loads with a message that says where the JSON breaks."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise MalformedBody('the body is not UTF-8 text: send JSON') from None
    except ValueError as e:
        raise MalformedBody(f'malformed JSON: {e}') from None


def parse_body(body: Any, endpoint: str | None = None) -> JsonRequest:
    """Check the shape of a JSON request; `endpoint` fixes the executor endpoint (CRUD and
    exposed routes), else the body's exec_endpoint (default '/')."""
    if not isinstance(body, dict):
        raise BadInput(f'the body must be a JSON object with "data" and "parameters", got {type(body).__name__}')
    header = body.get('header') or {}
    if not isinstance(header, dict):
        raise BadInput(f'header must be an object, got {type(header).__name__}')
    if endpoint is None:
        endpoint = _string(_pick(body, 'exec_endpoint', 'execEndpoint'), 'exec_endpoint') \
            or _string(_pick(header, 'exec_endpoint', 'execEndpoint'), 'header.exec_endpoint') or '/'
    target = _string(_pick(body, 'target_executor', 'targetExecutor'), 'target_executor')
    if target is None:
        target = _string(_pick(header, 'target_executor', 'targetExecutor'), 'header.target_executor')
    request_id = _string(_pick(header, 'request_id', 'requestId'), 'header.request_id') or ''
    parameters = body.get('parameters')
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadInput(f'parameters must be an object, got {type(parameters).__name__}')
    data = body.get('data')
    if data is None:
        docs: list[Any] = []
    elif isinstance(data, list):
        docs = data
    elif isinstance(data, dict) and 'docs' in data:
        docs = data['docs'] if isinstance(data['docs'], list) else None  # type: ignore[assignment]
        if docs is None:
            raise BadInput(f'data.docs must be a list of documents, got {type(data["docs"]).__name__}')
    elif isinstance(data, dict):
        docs = [data]  # a single document
    else:
        raise BadInput(f'data must be a list of documents or {{"docs": [...]}}, got {type(data).__name__}')
    return JsonRequest(endpoint, docs, parameters, target or None, request_id)


def build_request(parsed: JsonRequest, encoder: InputEncoder, schemas: dict[str, Any]) -> RawDataRequest:
    """The RawDataRequest for `parsed`, documents encoded with the endpoint's input type."""
    request = RawDataRequest()
    request.header.request_id = parsed.request_id or new_request_id()
    request.header.exec_endpoint = parsed.endpoint
    if parsed.target_executor:
        request.header.target_executor = parsed.target_executor
    try:
        dict_to_struct(parsed.parameters, request.parameters)
    except TypeError as e:
        raise BadInput(str(e)) from None
    request.data = encoder.encode(schemas, parsed.endpoint, parsed.docs)
    return request
