from google.protobuf import struct_pb2 as _struct_pb2
from plait.proto import jina_common_pb2 as _jina_common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RawDataRequest(_message.Message):
    __slots__ = ("header", "parameters", "routes", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: _jina_common_pb2.HeaderProto
    parameters: _struct_pb2.Struct
    routes: _containers.RepeatedCompositeFieldContainer[_jina_common_pb2.RouteProto]
    data: bytes
    def __init__(self, header: _Optional[_Union[_jina_common_pb2.HeaderProto, _Mapping]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., routes: _Optional[_Iterable[_Union[_jina_common_pb2.RouteProto, _Mapping]]] = ..., data: _Optional[bytes] = ...) -> None: ...
