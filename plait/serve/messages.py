"""Building and reading `jina` messages: documents in and out of DataRequestProto, parameters
as Struct, and exceptions as StatusProto."""

from __future__ import annotations

import time
import traceback
import uuid
from typing import Any, Optional

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from plait.proto import jina_common_pb2

StatusProto = jina_common_pb2.StatusProto


def now_timestamp() -> timestamp_pb2.Timestamp:
    """The current time as a protobuf Timestamp (4x cheaper than Timestamp.GetCurrentTime)."""
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


def new_request_id() -> str:
    return uuid.uuid4().hex


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct) if struct.fields else {}


def dict_to_struct(values: Optional[dict[str, Any]], into: Optional[struct_pb2.Struct] = None) -> struct_pb2.Struct:
    struct = into if into is not None else struct_pb2.Struct()
    if values:
        try:
            struct.update(values)
        except (ValueError, TypeError) as e:
            raise TypeError(f'parameters must be JSON-like (str, number, bool, None, list, dict): {e}') from None
    return struct


def exception_status(ex: BaseException, executor: str = '', description: Optional[str] = None) -> StatusProto:
    """StatusProto ERROR carrying the exception's name, args, stack and the executor name."""
    status = StatusProto(code=StatusProto.ERROR, description=description if description is not None else repr(ex))
    status.exception.name = type(ex).__name__
    status.exception.args.extend(str(a) for a in ex.args)
    status.exception.stacks.extend(traceback.format_exception(type(ex), ex, ex.__traceback__))
    status.exception.executor = executor
    return status


def decode_docs(content: Any, doc_list_type: type) -> Any:
    """Documents of a DataContentProto as `doc_list_type` (a concrete DocList class)."""
    from plait.documents import doc_list_from_protobuf
    from plait.proto._docarray import docarray_pb2

    which = content.WhichOneof('documents')
    if which == 'docs_bytes':
        return doc_list_from_protobuf(doc_list_type, docarray_pb2.DocListProto.FromString(content.docs_bytes))
    if which == 'docs':
        return doc_list_from_protobuf(doc_list_type, content.docs)
    return doc_list_type()


def encode_docs(docs: Any, content: Any) -> None:
    """Write `docs` (a DocList or list of documents) into a DataContentProto."""
    from plait.documents import doc_list_to_protobuf

    content.docs.SetInParent()
    doc_list_to_protobuf(docs, content.docs)
