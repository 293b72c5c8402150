"""The JSON form of `jina` messages, shared by the HTTP/WebSocket gateway and the HTTP client.

Documents are converted at the protobuf level (docarray's DocProto <-> JSON), without knowing
their Python type, so the gateway never needs the executors' classes:

- text, integer, float, boolean: JSON scalars; an empty node: ``null`` (dropped on input);
- ndarray: a (nested) list of numbers, non-finite values as ``null``;
- blob (bytes): its UTF-8 text when it is valid UTF-8, else ``"base64:<base64>"``;
- nested doc / dict: an object; doc_array / list / tuple / set: an array.

JSON numbers go back as ``integer`` when they fit in int32 (docarray's node type), else as
``float``. A status is always written whole, as the seeds show:
``{"code": 0, "description": "", "exception": null}``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format

from plait.proto import jina_common_pb2
from plait.proto._docarray import docarray_pb2
from plait.wire.constants import BLOB_PREFIX, INT32_MAX, INT32_MIN

StatusProto = jina_common_pb2.StatusProto


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as it is: what the gateway writes in messages and events."""
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


# -- status --------------------------------------------------------------------------------------
def status_json(status: StatusProto) -> dict[str, Any]:
    """A StatusProto as `{"code", "description", "exception"}` (exception null when unset)."""
    exception: dict[str, Any] | None = None
    if status.HasField('exception'):
        ex = status.exception
        exception = {'name': ex.name, 'args': list(ex.args), 'stacks': list(ex.stacks), 'executor': ex.executor}
    return {'code': int(status.code), 'description': status.description, 'exception': exception}


def status_from_json(value: Any) -> StatusProto:
    """The inverse of status_json; also reads protobuf's JSON form (`"code": "ERROR"`)."""
    status = StatusProto()
    if not isinstance(value, dict):
        return status
    code = value.get('code', 0)
    status.code = StatusProto.ERROR if code in (1, 'ERROR') else StatusProto.SUCCESS
    status.description = str(value.get('description') or '')
    ex = value.get('exception')
    if isinstance(ex, dict):
        status.exception.name = str(ex.get('name') or '')
        status.exception.args.extend(str(a) for a in ex.get('args') or [])
        status.exception.stacks.extend(str(s) for s in ex.get('stacks') or [])
        status.exception.executor = str(ex.get('executor') or '')
    return status


# -- documents: protobuf -> JSON -----------------------------------------------------------------
def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _ndarray_json(proto: Any) -> Any:
    import numpy as np

    dense = proto.dense
    array = np.frombuffer(dense.buffer, dtype=np.dtype(dense.dtype or 'float64'))
    if dense.shape:
        array = array.reshape(tuple(dense.shape))
    if array.dtype.kind == 'c' or (array.dtype.kind == 'f' and not np.isfinite(array).all()):
        return _clean(array.tolist())  # NaN/inf become null; complex numbers [real, imag]
    return array.tolist()


def _clean(value: Any) -> Any:
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, complex):
        return [_finite(value.real), _finite(value.imag)]
    return value


def _blob_json(blob: bytes) -> str:
    try:
        return blob.decode('utf-8')
    except UnicodeDecodeError:
        return BLOB_PREFIX + base64.b64encode(blob).decode('ascii')


def node_json(node: Any) -> Any:
    which = node.WhichOneof('content')
    if which is None:
        return None
    value = getattr(node, which)
    if which in ('text', 'integer', 'boolean'):
        return value
    if which == 'float':
        return _finite(value)
    if which == 'blob':
        return _blob_json(value)
    if which == 'ndarray':
        return _ndarray_json(value)
    if which == 'doc':
        return doc_json(value)
    if which == 'doc_array':
        return [doc_json(d) for d in value.docs]
    if which in ('list', 'set', 'tuple'):
        return [node_json(n) for n in value.data]
    if which == 'dict':
        return {k: node_json(v) for k, v in value.data.items()}
    return None


def doc_json(doc: Any) -> dict[str, Any]:
    """One DocProto as a JSON object; `id` first, then the fields in name order."""
    out: dict[str, Any] = {}
    if 'id' in doc.data:
        out['id'] = node_json(doc.data['id'])
    for key in sorted(doc.data):
        if key != 'id':
            out[key] = node_json(doc.data[key])
    return out


def docs_json(doc_list: Any) -> list[dict[str, Any]]:
    return [doc_json(d) for d in doc_list.docs]


# -- documents: JSON -> protobuf (schema-free, for clients) --------------------------------------
def _fill_node(node: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        node.boolean = value
    elif isinstance(value, int):
        if INT32_MIN <= value <= INT32_MAX:
            node.integer = value
        else:
            node.float = float(value)
    elif isinstance(value, float):
        node.float = value
    elif isinstance(value, str):
        if value.startswith(BLOB_PREFIX):
            try:
                node.blob = base64.b64decode(value[len(BLOB_PREFIX):], validate=True)
                return
            except ValueError:
                pass
        node.text = value
    elif isinstance(value, dict):
        node.dict.SetInParent()
        for k, v in value.items():
            _fill_node(node.dict.data[str(k)], v)
    elif isinstance(value, (list, tuple)):
        node.list.SetInParent()
        for v in value:
            _fill_node(node.list.data.add(), v)
    else:
        node.text = str(value)


def json_doc_proto(values: dict[str, Any], into: Any = None) -> Any:
    """A DocProto holding `values` (null values left out)."""
    doc = into if into is not None else docarray_pb2.DocProto()
    for key, value in values.items():
        if value is None:
            continue
        _fill_node(doc.data[str(key)], value)
        if key == 'id':
            doc.data['id'].type = 'id'
    return doc


def json_doc_list_proto(docs: Iterable[dict[str, Any]]) -> Any:
    out = docarray_pb2.DocListProto()
    for values in docs:
        json_doc_proto(values, out.docs.add())
    return out


# -- parameters ----------------------------------------------------------------------------------
def _value_json(value: Any) -> Any:
    which = value.WhichOneof('kind')
    if which == 'number_value':
        return _finite(value.number_value)
    if which == 'struct_value':
        return struct_json(value.struct_value)
    if which == 'list_value':
        return [_value_json(v) for v in value.list_value.values]
    if which in ('string_value', 'bool_value'):
        return getattr(value, which)
    return None


def struct_json(struct: Any) -> dict[str, Any]:
    """A protobuf Struct as JSON; NaN and infinities (which an executor may return, and JSON
    cannot say) as null instead of failing the whole answer."""
    try:
        return json_format.MessageToDict(struct) if struct.fields else {}
    except ValueError:
        return {k: _value_json(v) for k, v in struct.fields.items()}


# -- whole messages ------------------------------------------------------------------------------
def message_json(request: Any, docs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """`{"header", "parameters", "routes", "data"}` of a (Raw)DataRequest, with field names as in
    the .proto (snake_case) and the status written whole when it is an error."""
    header = json_format.MessageToDict(request.header, preserving_proto_field_name=True,
                                       use_integers_for_enums=True)
    if request.header.status.code == StatusProto.ERROR:
        header['status'] = status_json(request.header.status)
    return {
        'header': header,
        'parameters': struct_json(request.parameters),
        'routes': [json_format.MessageToDict(r, preserving_proto_field_name=True, use_integers_for_enums=True)
                   for r in request.routes],
        'data': docs,
    }


def error_json(status: StatusProto, request_id: str = '') -> dict[str, Any]:
    """The body of an error answer that has no request to speak of (e.g. malformed JSON)."""
    header: dict[str, Any] = {'request_id': request_id} if request_id else {}
    header['status'] = status_json(status)
    return {'header': header, 'parameters': {}, 'routes': [], 'data': None}
