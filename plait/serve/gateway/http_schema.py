"""Executors' document types rebuilt at the gateway from the JSON schemas they publish
(`endpoint_discovery`), so HTTP input is validated and encoded the way the executor expects
(field types, tensors, nested documents) without importing the executor's code."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Annotated, Any, Optional

from pydantic import BeforeValidator, ValidationError, create_model

from plait.errors import BadRequest
from plait.wire.constants import BLOB_PREFIX, WIRE_DEFAULT_ENDPOINT
from plait.wire.join import DataContentProto





def _blob_in(value: Any) -> Any:
    """Bytes fields take text (UTF-8) or `base64:<data>` as written by the JSON encoder."""
    if isinstance(value, str) and value.startswith(BLOB_PREFIX):
        try:
            return base64.b64decode(value[len(BLOB_PREFIX):], validate=True)
        except ValueError:
            return value
    return value


Blob = Annotated[bytes, BeforeValidator(_blob_in)]


class _Builder:
    """Turns one JSON schema (with its `$defs`) into docarray BaseDoc classes."""

    def __init__(self, defs: dict[str, Any]):
        self.defs = defs
        self.built: dict[str, Any] = {}

    def ref(self, ref: str) -> Any:
        name = ref.rsplit('/', 1)[-1]
        if name in self.built:
            return self.built[name]
        target = self.defs.get(name)
        if not isinstance(target, dict):
            return Any
        if 'properties' not in target:
            return self.type_of(target)
        self.built[name] = dict[str, Any]  # a self-reference while building: accept any object
        self.built[name] = self.model(target, name)
        return self.built[name]

    def model(self, schema: dict[str, Any], name: str) -> Any:
        from docarray import BaseDoc

        required = set(schema.get('required') or [])
        fields: dict[str, Any] = {}
        for field, prop in (schema.get('properties') or {}).items():
            if field == 'id' or field.startswith('_') or not isinstance(prop, dict):
                continue
            kind = self.type_of(prop)
            # optional fields stay unset (and off the wire) unless sent: the executor's own
            # defaults then apply
            fields[field] = (kind, ...) if field in required else (Optional[kind], None)  # noqa: UP045  (built at runtime)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # e.g. a field named like a BaseModel attribute
            return create_model(str(name), __base__=BaseDoc, **fields)

    def type_of(self, prop: dict[str, Any]) -> Any:
        from docarray import DocList
        from docarray.typing import NdArray

        if '$ref' in prop:
            return self.ref(prop['$ref'])
        for key in ('anyOf', 'oneOf'):
            if key in prop:
                options = [p for p in prop[key] if isinstance(p, dict) and p.get('type') != 'null']
                return self.type_of(options[0]) if len(options) == 1 else Any
        if isinstance(prop.get('allOf'), list) and len(prop['allOf']) == 1:
            return self.type_of(prop['allOf'][0])
        kind = prop.get('type')
        if kind == 'string':
            return Blob if prop.get('format') == 'binary' else str
        if kind == 'integer':
            return int
        if kind == 'number':
            return float
        if kind == 'boolean':
            return bool
        if kind == 'array':
            if 'tensor/array shape' in prop:
                return NdArray
            items = prop.get('items')
            if isinstance(items, dict) and '$ref' in items:
                inner = self.ref(items['$ref'])
                if isinstance(inner, type) and hasattr(inner, 'to_protobuf'):
                    return DocList[inner]
                return list[inner]
            return list[self.type_of(items)] if isinstance(items, dict) and items else list
        if kind == 'object':
            return dict[str, Any]
        return Any


def doc_model_from_schema(schema: dict[str, Any], name: str | None = None) -> Any:
    """A BaseDoc subclass accepting what `schema` (a pydantic JSON schema) describes."""
    builder = _Builder(schema.get('$defs') or schema.get('definitions') or {})
    return builder.model(schema, name or schema.get('title') or 'Document')


def input_schema(schemas: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    """The JSON schema of the documents `endpoint` takes, if the executors published one."""
    entry = schemas.get(endpoint) or schemas.get(WIRE_DEFAULT_ENDPOINT)
    if not isinstance(entry, dict) or not isinstance(entry.get('input'), dict):
        return None
    model = entry['input'].get('model')
    return model if isinstance(model, dict) else None


def output_schema(schemas: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    entry = schemas.get(endpoint) or schemas.get(WIRE_DEFAULT_ENDPOINT)
    if not isinstance(entry, dict) or not isinstance(entry.get('output'), dict):
        return None
    model = entry['output'].get('model')
    return model if isinstance(model, dict) else None


def _validation_message(error: ValidationError, where: str) -> str:
    parts = []
    for item in error.errors():
        path = where + ''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in item['loc'])
        parts.append(f"{path}: {item['msg']}")
    return '; '.join(parts)


def _drop_unset(doc: Any) -> None:
    """Remove empty nodes (None values) so the executor's defaults apply to them."""
    for key in list(doc.data):
        node = doc.data[key]
        which = node.WhichOneof('content')
        if which is None:
            del doc.data[key]
        elif which == 'doc':
            _drop_unset(node.doc)
        elif which == 'doc_array':
            for inner in node.doc_array.docs:
                _drop_unset(inner)


class InputEncoder:
    """Validates JSON documents against the endpoint's input type and serializes them as a
    DataContentProto; the types built from schemas are cached."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}

    def model_for(self, schemas: dict[str, Any], endpoint: str) -> Any:
        schema = input_schema(schemas, endpoint)
        if schema is None:
            from plait.documents import Document

            return Document
        key = json.dumps(schema, sort_keys=True)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = doc_model_from_schema(schema)
        return model

    def encode(self, schemas: dict[str, Any], endpoint: str, docs: list[Any]) -> bytes:
        from docarray import DocList

        model = self.model_for(schemas, endpoint)
        items = []
        for i, values in enumerate(docs):
            if not isinstance(values, dict):
                raise BadRequest(f'data[{i}] must be a JSON object (a document), got {type(values).__name__}')
            try:
                items.append(model.model_validate(values))
            except ValidationError as e:
                raise BadRequest(_validation_message(e, f'data[{i}]')) from None
        content = DataContentProto()
        try:
            content.docs.CopyFrom(DocList[model](items).to_protobuf())
        except Exception as e:  # noqa: BLE001  (a value docarray cannot put on the wire)
            raise BadRequest(f'data: cannot encode the documents: {e}') from None
        for doc in content.docs.docs:
            _drop_unset(doc)
        return content.SerializeToString()
