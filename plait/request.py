"""DataRequest: a response (or request) as users see it — documents, parameters, status,
routes — over the wire message it wraps, decoding documents only when asked."""

from __future__ import annotations

from typing import Any, Optional

from plait.proto import jina_data_pb2
from plait.wire.messages import struct_to_dict


class DataRequest:
    def __init__(self, proto: Optional[jina_data_pb2.DataRequestProto] = None,
                 doc_list_type: Optional[type] = None):
        self.proto = proto if proto is not None else jina_data_pb2.DataRequestProto()
        self._doc_list_type = doc_list_type
        self._docs: Any = None

    @property
    def docs(self) -> Any:
        if self._docs is None:
            from plait.documents import DocumentArray, decode_docs

            self._docs = decode_docs(self.proto.data, self._doc_list_type or DocumentArray)
        return self._docs

    @property
    def parameters(self) -> dict[str, Any]:
        return struct_to_dict(self.proto.parameters)

    @property
    def header(self) -> Any:
        return self.proto.header

    @property
    def status(self) -> Any:
        return self.proto.header.status

    @property
    def routes(self) -> Any:
        return self.proto.routes

    @property
    def request_id(self) -> str:
        return self.proto.header.request_id

    def __repr__(self) -> str:
        return f'<DataRequest {self.request_id} endpoint={self.header.exec_endpoint!r}>'
