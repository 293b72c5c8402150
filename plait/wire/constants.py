"""Names and bounds fixed by the Jina 3.x wire protocol (see PROTOCOL.md)."""

from __future__ import annotations

DRY_RUN_ENDPOINT = '_jina_dry_run_'   # the endpoint dry_run sends through the whole graph
WIRE_DEFAULT_ENDPOINT = '/default'       # how endpoint discovery names an executor's default endpoint
BLOB_PREFIX = 'base64:'               # bytes that are not UTF-8 travel in JSON as base64:<data>
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1  # docarray's integer node; larger ints travel as float
COMPRESSIONS = ('none', 'gzip', 'deflate')

# gRPC metadata
RESULTS_IN_ORDER = '__results_in_order__'   # client -> gateway: 'true' to get answers in request order
PREFETCH = '__prefetch__'                   # client -> gateway: requests in flight, '0' = unlimited
ENDPOINT = 'endpoint'                       # gateway -> executor: the exec_endpoint of the call
IS_ERROR = (('is-error', 'true'),)          # trailing metadata of an answer whose status is ERROR

# gRPC method paths
SINGLE_PATH = '/jina.JinaSingleDataRequestRPC/process_single_data'
DATA_PATH = '/jina.JinaDataRequestRPC/process_data'  # several requests in one call (a DataRequestListProto)
CALL_PATH = '/jina.JinaRPC/Call'

END_OF_INPUT = bytes(True)  # b'\x00': a WebSocket client's last message (Jina's bytes(True))
