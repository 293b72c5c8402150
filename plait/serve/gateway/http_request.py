"""Reading a JSON request body (HTTP `/post`, CRUD and exposed endpoints, WebSocket text
messages) into a RawDataRequest for GatewayCore.

Accepted body, with snake_case or camelCase keys (what Jina's clients and curl users send):
``{"data": [docs] | {"docs": [docs]} | doc, "parameters": {}, "exec_endpoint": "/",
"target_executor": "", "header": {"request_id", "exec_endpoint", "target_executor"}}``.

The body must be UTF-8 JSON (a leading BOM is allowed; the Content-Type is not checked). Refused
with 400 as malformed: invalid UTF-8, invalid JSON, NaN/Infinity, a key twice in one object (parsers
disagree on which one wins), lone UTF-16 surrogate escapes (not Unicode text), nesting beyond
Python's recursion limit. Refused with 422 as the wrong shape: see `parse_body`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.errors import BadRequest, MalformedRequest
from plait.serve.gateway.http_schema import InputEncoder
from plait.wire.messages import dict_to_struct, new_request_id

RESERVED_PARAMETERS = ('__results__',)  # written by the executors (their returned dicts): dropped from input
MAX_PARAMETER_DEPTH = 32  # protobuf Struct nests 2 messages per level; parsers stop at 100 messages
_MAX_DOUBLE = 1.7976931348623157e308
_SURROGATE_ESCAPE = re.compile(r'\\u[dD][89a-fA-F]')


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
    raise BadRequest(f'{name} must be a string, got {type(value).__name__}')


def _shown(text: str, limit: int = 60) -> str:
    """`text` quoted, ASCII only (it may hold surrogates) and cut to `limit` characters."""
    return ascii(text if len(text) <= limit else text[:limit] + '...')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedRequest(f'malformed JSON: key {_shown(key)} appears twice in one object; send it once')
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise MalformedRequest(f'malformed JSON: {name} is not a JSON number; send null or a finite number')


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f'{parent}[{key}]'
    name = key if key.isidentifier() else _shown(key)
    return f'{parent}.{name}' if parent else name


def _lone_surrogate(value: Any) -> str | None:
    """Where `value` holds a string (or key) with a lone surrogate, e.g. 'data[0].text'."""
    stack: list[tuple[Any, str]] = [(value, '')]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            try:
                item.encode('utf-8')
            except UnicodeEncodeError:
                return where or 'the body'
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append((key, _path(where, key) + ' (a key)'))
                stack.append((inner, _path(where, key)))
        elif isinstance(item, list):
            stack.extend((inner, _path(where, i)) for i, inner in enumerate(item))
    return None


def loads(raw: bytes | str) -> Any:
    """json.loads, strict (see the module docstring), with a message that says where and why."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode('utf-8-sig')  # strict: encoded surrogates are refused as well
        except UnicodeDecodeError as e:
            raise MalformedRequest(f'the body is not UTF-8 text (invalid byte at offset {e.start}): '
                                f'send JSON encoded as UTF-8') from None
    else:
        text = raw
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except MalformedRequest:
        raise
    except RecursionError:
        raise MalformedRequest('malformed JSON: nested too deeply (arrays or objects about 1000 levels deep); '
                            'flatten the request') from None
    except ValueError as e:
        raise MalformedRequest(f'malformed JSON: {e}') from None
    if _SURROGATE_ESCAPE.search(text):
        where = _lone_surrogate(value)
        if where is not None:
            raise MalformedRequest(f'{where}: holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its '
                                f'pair), which is not Unicode text')
    return value


def _check_parameters(parameters: dict[str, Any]) -> None:
    """Parameters travel as a protobuf Struct: numbers are doubles and nesting is bounded."""
    for name in RESERVED_PARAMETERS:
        # output only: Jina's HTTP client sends an empty one with every request, so it is
        # dropped rather than refused, and results come from the executors alone
        parameters.pop(name, None)
    stack: list[tuple[Any, str, int]] = [(parameters, 'parameters', 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_PARAMETER_DEPTH:
                raise BadRequest(f'{where}: parameters are nested more than {MAX_PARAMETER_DEPTH} levels deep')
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((inner, _path(where, key), depth + 1) for key, inner in pairs)
        elif isinstance(item, float) and not math.isfinite(item) \
                or isinstance(item, int) and not isinstance(item, bool) and abs(item) > _MAX_DOUBLE:
            raise BadRequest(f'{where}: the number is out of the range of a double (parameters are JSON numbers '
                           f'up to about 1.8e308)')


def parse_body(body: Any, endpoint: str | None = None) -> JsonRequest:
    """Check the shape of a JSON request; `endpoint` fixes the executor endpoint (CRUD and
    exposed routes), else the body's exec_endpoint (default '/'). Raises BadRequest (422) naming
    the field: a non-object body, fields of the wrong type, parameters nested over
    MAX_PARAMETER_DEPTH or with numbers no double holds. A `__results__` parameter is dropped."""
    if not isinstance(body, dict):
        raise BadRequest(f'the body must be a JSON object with "data" and "parameters", got {type(body).__name__}')
    header = body.get('header') or {}
    if not isinstance(header, dict):
        raise BadRequest(f'header must be an object, got {type(header).__name__}')
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
        raise BadRequest(f'parameters must be an object, got {type(parameters).__name__}')
    _check_parameters(parameters)
    data = body.get('data')
    if data is None:
        docs: list[Any] = []
    elif isinstance(data, list):
        docs = data
    elif isinstance(data, dict) and 'docs' in data:
        docs = data['docs'] if isinstance(data['docs'], list) else None  # type: ignore[assignment]
        if docs is None:
            raise BadRequest(f'data.docs must be a list of documents, got {type(data["docs"]).__name__}')
    elif isinstance(data, dict):
        docs = [data]  # a single document
    else:
        raise BadRequest(f'data must be a list of documents or {{"docs": [...]}}, got {type(data).__name__}')
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
    except (TypeError, ValueError, OverflowError) as e:
        raise BadRequest(f'parameters: {e}') from None
    request.data = encoder.encode(schemas, parsed.endpoint, parsed.docs)
    return request
