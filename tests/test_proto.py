"""Pins the `jina` wire protocol to the compatibility table (services, rpcs, streaming, message
fields and numbers), read through the generated descriptors so drift cannot go unnoticed."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pool

from plait.proto import jina_common_pb2, jina_data_pb2  # noqa: F401  (register the descriptors)

POOL = descriptor_pool.Default()

# service -> {rpc: (input, output, client_streaming, server_streaming)}
SERVICES = {
    'jina.JinaDataRequestRPC': {'process_data': ('jina.DataRequestListProto', 'jina.DataRequestProto', False, False)},
    'jina.JinaSingleDataRequestRPC': {
        'process_single_data': ('jina.DataRequestProto', 'jina.DataRequestProto', False, False)},
    'jina.JinaSingleDocumentRequestRPC': {
        'stream_doc': ('jina.SingleDocumentRequestProto', 'jina.SingleDocumentRequestProto', False, True)},
    'jina.JinaRPC': {'Call': ('jina.DataRequestProto', 'jina.DataRequestProto', True, True)},
    'jina.JinaDiscoverEndpointsRPC': {
        'endpoint_discovery': ('google.protobuf.Empty', 'jina.EndpointsProto', False, False)},
    'jina.JinaGatewayDryRunRPC': {'dry_run': ('google.protobuf.Empty', 'jina.StatusProto', False, False)},
    'jina.JinaInfoRPC': {'_status': ('google.protobuf.Empty', 'jina.JinaInfoProto', False, False)},
    'jina.JinaExecutorSnapshot': {'snapshot': ('google.protobuf.Empty', 'jina.SnapshotStatusProto', False, False)},
    'jina.JinaExecutorSnapshotProgress': {
        'snapshot_status': ('jina.SnapshotId', 'jina.SnapshotStatusProto', False, False)},
    'jina.JinaExecutorRestore': {
        'restore': ('jina.RestoreSnapshotCommand', 'jina.RestoreSnapshotStatusProto', False, False)},
    'jina.JinaExecutorRestoreProgress': {
        'restore_status': ('jina.RestoreId', 'jina.RestoreSnapshotStatusProto', False, False)},
}

# message -> {field: (number, type name or scalar, repeated)}
MESSAGES = {
    'jina.HeaderProto': {'request_id': (1, 'string', False), 'status': (2, 'jina.StatusProto', False),
                         'exec_endpoint': (3, 'string', False), 'target_executor': (4, 'string', False),
                         'timeout': (5, 'uint32', False)},
    'jina.StatusProto': {'code': (1, 'jina.StatusProto.StatusCode', False), 'description': (2, 'string', False),
                         'exception': (3, 'jina.StatusProto.ExceptionProto', False)},
    'jina.StatusProto.ExceptionProto': {'name': (1, 'string', False), 'args': (2, 'string', True),
                                        'stacks': (3, 'string', True), 'executor': (4, 'string', False)},
    'jina.RouteProto': {'executor': (1, 'string', False), 'start_time': (2, 'google.protobuf.Timestamp', False),
                        'end_time': (3, 'google.protobuf.Timestamp', False), 'status': (4, 'jina.StatusProto', False)},
    'jina.JinaInfoProto': {'jina': (1, 'jina.JinaInfoProto.JinaEntry', True),
                           'envs': (2, 'jina.JinaInfoProto.EnvsEntry', True)},
    'jina.EndpointsProto': {'endpoints': (1, 'string', True), 'write_endpoints': (2, 'string', True),
                            'schemas': (3, 'google.protobuf.Struct', False)},
    'jina.RelatedEntity': {'id': (1, 'string', False), 'address': (2, 'string', False), 'port': (3, 'uint32', False),
                           'shard_id': (4, 'uint32', False)},
    'jina.DataRequestProto': {'header': (1, 'jina.HeaderProto', False), 'parameters': (2, 'google.protobuf.Struct', False),
                              'routes': (3, 'jina.RouteProto', True),
                              'data': (4, 'jina.DataRequestProto.DataContentProto', False)},
    'jina.DataRequestProto.DataContentProto': {'docs': (1, 'docarray.DocListProto', False),
                                               'docs_bytes': (2, 'bytes', False)},
    'jina.DataRequestProtoWoData': {'header': (1, 'jina.HeaderProto', False),
                                    'parameters': (2, 'google.protobuf.Struct', False),
                                    'routes': (3, 'jina.RouteProto', True)},
    'jina.SingleDocumentRequestProto': {'header': (1, 'jina.HeaderProto', False),
                                        'parameters': (2, 'google.protobuf.Struct', False),
                                        'routes': (3, 'jina.RouteProto', True),
                                        'document': (4, 'docarray.DocProto', False)},
    'jina.DataRequestListProto': {'requests': (1, 'jina.DataRequestProto', True)},
    'jina.SnapshotId': {'value': (1, 'string', False)},
    'jina.RestoreId': {'value': (1, 'string', False)},
    'jina.SnapshotStatusProto': {'id': (1, 'jina.SnapshotId', False),
                                 'status': (2, 'jina.SnapshotStatusProto.Status', False),
                                 'snapshot_file': (3, 'string', False)},
    'jina.RestoreSnapshotStatusProto': {'id': (1, 'jina.RestoreId', False),
                                        'status': (2, 'jina.RestoreSnapshotStatusProto.Status', False)},
    'jina.RestoreSnapshotCommand': {'snapshot_file': (1, 'string', False)},
    'docarray.DocListProto': {'docs': (1, 'docarray.DocProto', True)},
    'docarray.DenseNdArrayProto': {'buffer': (1, 'bytes', False), 'shape': (2, 'uint32', True),
                                   'dtype': (3, 'string', False)},
    'docarray.NdArrayProto': {'dense': (1, 'docarray.DenseNdArrayProto', False),
                              'parameters': (2, 'google.protobuf.Struct', False)},
}

ENUMS = {
    'jina.StatusProto.StatusCode': {'SUCCESS': 0, 'ERROR': 1},
    'jina.SnapshotStatusProto.Status': {'STATE_UNSPECIFIED': 0, 'QUEUED': 1, 'SCHEDULED': 2, 'RUNNING': 3,
                                        'SUCCEEDED': 4, 'FAILED': 5, 'NOT_FOUND': 6},
    'jina.RestoreSnapshotStatusProto.Status': {'STATE_UNSPECIFIED': 0, 'RUNNING': 1, 'SUCCEEDED': 2, 'FAILED': 3,
                                               'NOT_FOUND': 6},
}

_SCALARS = {9: 'string', 12: 'bytes', 13: 'uint32', 5: 'int32', 1: 'double', 8: 'bool'}


def _type_name(field) -> str:
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    return _SCALARS[field.type]


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_service_rpcs(service):
    desc = POOL.FindServiceByName(service)
    found = {m.name: (m.input_type.full_name, m.output_type.full_name, m.client_streaming, m.server_streaming)
             for m in desc.methods}
    assert found == SERVICES[service]


@pytest.mark.parametrize('message', sorted(MESSAGES))
def test_message_fields(message):
    desc = POOL.FindMessageTypeByName(message)
    found = {f.name: (f.number, _type_name(f), f.is_repeated) for f in desc.fields}
    assert found == MESSAGES[message]


def test_docs_oneof_and_optional_header_fields():
    content = POOL.FindMessageTypeByName('jina.DataRequestProto.DataContentProto')
    assert [f.name for f in content.oneofs_by_name['documents'].fields] == ['docs', 'docs_bytes']
    header = POOL.FindMessageTypeByName('jina.HeaderProto')
    for name in ('exec_endpoint', 'target_executor', 'timeout'):
        assert header.fields_by_name[name].has_presence, name


@pytest.mark.parametrize('enum', sorted(ENUMS))
def test_enum_values(enum):
    desc = POOL.FindEnumTypeByName(enum)
    assert {v.name: v.number for v in desc.values} == ENUMS[enum]


def test_raw_request_reads_and_writes_the_same_bytes():
    """The gateway's undecoded view must round-trip DataRequestProto byte for byte."""
    from plait.proto.plait_raw_pb2 import RawDataRequest

    request = jina_data_pb2.DataRequestProto()
    request.header.request_id = 'r1'
    request.header.exec_endpoint = '/foo'
    request.parameters.update({'k': 1})
    doc = request.data.docs.docs.add()
    doc.data['text'].text = 'hello'
    wire = request.SerializeToString()
    raw = RawDataRequest.FromString(wire)
    assert raw.header.exec_endpoint == '/foo'
    assert raw.SerializeToString() == wire
    assert jina_data_pb2.DataRequestProto.FromString(raw.SerializeToString()) == request
