"""Building and reading `jina` messages: request headers, parameters as Struct, timestamps,
and the one builder of error statuses that every error answer uses."""

from __future__ import annotations

import time
import traceback
import uuid
from typing import Any, Optional, Sequence

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


def error_status(error: BaseException | str, name: Optional[str] = None, executor: str = '',
                 description: Optional[str] = None, stacks: Optional[Sequence[str]] = None) -> StatusProto:
    """StatusProto ERROR for an exception (its name, args and stack) or for a message (`name`
    defaults to InternalNetworkError, the one argument is the message)."""
    if isinstance(error, BaseException):
        args = [str(a) for a in error.args]
        name = name or type(error).__name__
        description = description if description is not None else repr(error)
        if stacks is None:
            stacks = traceback.format_exception(type(error), error, error.__traceback__)
    else:
        args = [error]
        name = name or 'InternalNetworkError'
        description = description if description is not None else error
    status = StatusProto(code=StatusProto.ERROR, description=description)
    status.exception.name = name
    status.exception.args.extend(args)
    status.exception.stacks.extend(stacks or ())
    status.exception.executor = executor
    return status
