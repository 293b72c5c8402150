"""Joining document batches at the protobuf level (no docarray objects): documents with the
same id are merged field by field, a field set later winning over an earlier one, and dict
fields (tags) updated key by key, as docarray's `update` does. The gateway joins branches with
it and the worker joins the requests of several predecessors with it, so both agree."""

from __future__ import annotations

from plait.proto import jina_data_pb2
from plait.proto._docarray import docarray_pb2

DataContentProto = jina_data_pb2.DataRequestProto.DataContentProto


def doc_list_of(data: bytes) -> docarray_pb2.DocListProto:
    """The DocListProto inside a serialized DataContentProto (`docs` or `docs_bytes`)."""
    return doc_list_in(DataContentProto.FromString(data))


def doc_list_in(content: DataContentProto) -> docarray_pb2.DocListProto:
    """The DocListProto of a DataContentProto, whichever form (`docs` or `docs_bytes`) it has."""
    if content.WhichOneof('documents') == 'docs_bytes':
        return docarray_pb2.DocListProto.FromString(content.docs_bytes)
    return content.docs


def join_doc_lists(doc_lists: list[docarray_pb2.DocListProto]) -> docarray_pb2.DocListProto:
    """One DocListProto holding the documents of all `doc_lists`, merged by id in order of
    first appearance; documents without an id are kept as they are, after the others."""
    merged: dict[str, docarray_pb2.DocProto] = {}
    copied: set[str] = set()  # the inputs are never changed: a document is copied before its first update
    anonymous: list[docarray_pb2.DocProto] = []
    for doc_list in doc_lists:
        for doc in doc_list.docs:
            doc_id = doc.data['id'].text if 'id' in doc.data else ''
            if not doc_id:
                anonymous.append(doc)
                continue
            target = merged.get(doc_id)
            if target is None:
                merged[doc_id] = doc
                continue
            if doc_id not in copied:
                target = merged[doc_id] = _copy(target)
                copied.add(doc_id)
            for key, value in doc.data.items():
                kind = value.WhichOneof('content')
                if kind == 'dict' and key in target.data and target.data[key].WhichOneof('content') == 'dict':
                    target.data[key].dict.MergeFrom(value.dict)  # dicts (tags) are updated key by key
                elif kind is not None or key not in target.data:
                    target.data[key].CopyFrom(value)
    out = docarray_pb2.DocListProto()
    out.docs.extend([*merged.values(), *anonymous])
    return out


def _copy(doc: docarray_pb2.DocProto) -> docarray_pb2.DocProto:
    copy = docarray_pb2.DocProto()
    copy.CopyFrom(doc)
    return copy


def merge_data(datas: list[bytes]) -> bytes:
    """One serialized DataContentProto holding the documents of all `datas` (serialized
    DataContentProtos), joined by id (see join_doc_lists)."""
    if len(datas) == 1:
        return datas[0]
    out = DataContentProto()
    out.docs.CopyFrom(join_doc_lists([doc_list_of(data) for data in datas]))
    return out.SerializeToString()


def request_list(requests: list) -> bytes:
    """A serialized DataRequestListProto of `requests` (DataRequestProto or the raw view, whose
    bytes are the same): each one as field 1, length-delimited."""
    out = bytearray()
    for request in requests:
        body = request.SerializeToString()
        out.append(0x0A)
        size = len(body)
        while size > 0x7F:
            out.append((size & 0x7F) | 0x80)
            size >>= 7
        out.append(size)
        out += body
    return bytes(out)
