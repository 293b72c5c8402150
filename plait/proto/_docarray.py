"""The generated docarray protobuf module that docarray itself loaded (it picks one per
protobuf major version), so that plait's descriptors depend on the very same file."""

import sys

import docarray.proto  # noqa: F401  (registers docarray.proto in the default pool)

docarray_pb2 = sys.modules.get('docarray.proto.pb.docarray_pb2') or sys.modules['docarray.proto.pb2.docarray_pb2']
