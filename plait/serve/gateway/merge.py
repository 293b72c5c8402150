"""Joining document batches at the protobuf level (no docarray objects): documents with the
same id are merged field by field, a field set later winning over an earlier one, and dict
fields (tags) updated key by key, as docarray's `update` does."""

from __future__ import annotations

from plait.proto import jina_data_pb2
from plait.proto._docarray import docarray_pb2

DataContentProto = jina_data_pb2.DataRequestProto.DataContentProto


def doc_list_of(data: bytes) -> docarray_pb2.DocListProto:
    content = DataContentProto.FromString(data)
    if content.WhichOneof('documents') == 'docs_bytes':
        return docarray_pb2.DocListProto.FromString(content.docs_bytes)
    return content.docs


def merge_data(datas: list[bytes]) -> bytes:
    """One DataContentProto holding the documents of all `datas`, merged by id in order of
    first appearance."""
    if len(datas) == 1:
        return datas[0]
    merged: dict[str, docarray_pb2.DocProto] = {}
    anonymous: list[docarray_pb2.DocProto] = []
    for data in datas:
        for doc in doc_list_of(data).docs:
            doc_id = doc.data['id'].text if 'id' in doc.data else ''
            if not doc_id:
                anonymous.append(doc)
                continue
            target = merged.get(doc_id)
            if target is None:
                merged[doc_id] = doc
                continue
            for key, value in doc.data.items():
                kind = value.WhichOneof('content')
                if kind == 'dict' and key in target.data and target.data[key].WhichOneof('content') == 'dict':
                    target.data[key].dict.MergeFrom(value.dict)  # dicts (tags) are updated key by key
                elif kind is not None or key not in target.data:
                    target.data[key].CopyFrom(value)
    out = DataContentProto()
    out.docs.docs.extend([*merged.values(), *anonymous])
    return out.SerializeToString()
