"""Documents: a general-purpose `Document` and `DocumentArray` on docarray v2, plus the
(de)serialisation of document batches to and from the wire."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from docarray import BaseDoc, DocList
from docarray.base_doc.mixins.io import _type_to_protobuf
from docarray.typing import ID, AnyEmbedding, AnyTensor
from docarray.typing.abstract_type import AbstractType

from plait.errors import PlaitError
from plait.wire.constants import INT32_MAX, INT32_MIN


class Document(BaseDoc):
    """A document for any modality: text, uri, tags, embedding, tensor, raw bytes."""

    parent_id: Optional[str] = None
    text: Optional[str] = None
    uri: Optional[str] = None
    mime_type: Optional[str] = None
    tags: dict[str, Any] = {}
    embedding: Optional[AnyEmbedding] = None
    tensor: Optional[AnyTensor] = None
    blob: Optional[bytes] = None


class DocumentArray(DocList[Document]):
    """A list of `Document` with the conveniences of docarray v1 (`.texts`, `.embeddings`...)."""

    def __init__(self, docs: Optional[Iterable[Document]] = None):
        super().__init__(docs if docs is not None else [])

    @property
    def texts(self) -> list[Optional[str]]:
        return [d.text for d in self]

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self]

    @property
    def tags(self) -> list[dict]:
        return [d.tags for d in self]


# -- fast decoding -------------------------------------------------------------------------
# docarray's generic DocProto reader builds a pydantic TypeAdapter for every document id
# (~0.5 ms each). Plain values (text, numbers, bytes, lists, dicts, ids) are read here
# directly; anything typed by docarray (tensors, nested documents) still goes through
# docarray, field by field, so results are the same.

_SCALAR_CONTENT = ('text', 'blob', 'integer', 'float', 'boolean')
_CONTAINERS = {'list': list, 'set': set, 'tuple': tuple}


class _NeedsDocarray(PlaitError):
    """This value carries a docarray type that only docarray can rebuild."""


def _plain_value(node: Any) -> Any:
    if node.WhichOneof('docarray_type') is not None and node.type != 'id':
        raise _NeedsDocarray
    content = node.WhichOneof('content')
    if content is None:
        return None
    if content in _SCALAR_CONTENT:
        return getattr(node, content)
    if content == 'dict':
        return {key: _plain_value(value) for key, value in node.dict.data.items()}
    if content in _CONTAINERS:
        return _CONTAINERS[content](_plain_value(value) for value in getattr(node, content).data)
    raise _NeedsDocarray


def doc_from_protobuf(doc_type: type, proto: Any) -> Any:
    """One document of `doc_type` from a DocProto, validated by its pydantic model."""
    fields = doc_type._docarray_fields()
    values = {}
    for name, node in proto.data.items():
        if name not in fields:
            continue  # as docarray does: keys the schema does not know are dropped
        try:
            values[name] = _plain_value(node)
        except _NeedsDocarray:
            values[name] = doc_type._get_content_from_node_proto(node, name)
    return doc_type(**values)


def doc_list_from_protobuf(doc_list_type: type, proto: Any) -> Any:
    """A DocList of `doc_list_type` from a DocListProto (the fast path of from_protobuf)."""
    doc_type = doc_list_type.doc_type
    if (doc_type.model_config.get('_load_extra_fields_from_protobuf')
            or not hasattr(doc_type, '_get_content_from_node_proto')):
        return doc_list_type.from_protobuf(proto)
    return doc_list_type([doc_from_protobuf(doc_type, d) for d in proto.docs])


# -- fast encoding -------------------------------------------------------------------------


def _fill_plain(node: Any, value: Any) -> None:
    """Write a plain Python value into a NodeProto; _NeedsDocarray for anything else."""
    if value is None:
        return
    if isinstance(value, ID):
        node.text = value
        node.type = 'id'
    elif isinstance(value, AbstractType):
        raise _NeedsDocarray
    elif isinstance(value, bool):
        node.boolean = value
    elif isinstance(value, int) and INT32_MIN <= value <= INT32_MAX:
        node.integer = value
    elif isinstance(value, float):
        node.float = value
    elif isinstance(value, str):
        node.text = value
    elif isinstance(value, bytes):
        node.blob = value
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        for key, item in value.items():
            _fill_plain(node.dict.data[key], item)
        node.dict.SetInParent()
    elif type(value) in (list, tuple, set):
        container = getattr(node, type(value).__name__)
        for item in value:
            _fill_plain(container.data.add(), item)
        container.SetInParent()
    else:
        raise _NeedsDocarray


def doc_to_protobuf(doc: Any, into: Any) -> None:
    """Write `doc` into the DocProto `into` (the fast path of BaseDoc.to_protobuf)."""
    for name, value in doc:
        node = into.data[name]
        try:
            _fill_plain(node, value)
        except _NeedsDocarray:
            node.Clear()
            node.CopyFrom(_type_to_protobuf(value))


def doc_list_to_protobuf(docs: Iterable[Any], into: Any) -> None:
    """Write documents into the DocListProto `into`."""
    for doc in docs:
        doc_to_protobuf(doc, into.docs.add())


# -- documents in a DataContentProto -------------------------------------------------------
def decode_docs(content: Any, doc_list_type: type) -> Any:
    """Documents of a DataContentProto (`docs` or `docs_bytes`) as `doc_list_type` (a concrete
    DocList class)."""
    from plait.wire.join import doc_list_in

    if content.WhichOneof('documents') is None:
        return doc_list_type()
    return doc_list_from_protobuf(doc_list_type, doc_list_in(content))


def encode_docs(docs: Any, content: Any) -> None:
    """Write `docs` (a DocList or list of documents) into a DataContentProto."""
    content.docs.SetInParent()
    doc_list_to_protobuf(docs, content.docs)
