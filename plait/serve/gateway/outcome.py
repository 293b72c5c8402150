"""One failure policy for the gateway: `GatewayCore.process` returns an `Outcome` (the answer,
and what kind of failure it is, if any), and each face maps the kind through a table here
instead of catching its own mix of exceptions.

=====================  ==================================================  ====  ======================
kind                   when                                                HTTP  gRPC (unary / Call)
=====================  ==================================================  ====  ======================
(none)                 served                                              200   the answer
EXECUTOR_ERROR         an executor raised (the answer carries its status)  500   answer + is-error
EXECUTOR_REFUSED       an executor refused the request's shape before      422   answer + is-error
                       calling its method (a parameter that does not fit
                       its pydantic model): its status names BadRequest
UNKNOWN_ENDPOINT       no executor serves the endpoint                     404   NOT_FOUND / answer
NOT_SERVED             a replica answered NOT_FOUND for it (Jina: 503)     503   NOT_FOUND / answer
UNAVAILABLE            a deployment could not be reached                   503   answer + is-error
TIMEOUT                an executor did not answer within timeout_send      504   answer + is-error
NETWORK_ERROR          another transport failure on the way                500   answer + is-error
REFUSED                an executor refused the request (INVALID_ARGUMENT)  400   INVALID_ARGUMENT
TOO_LARGE              an executor refused it as too large                 413   RESOURCE_EXHAUSTED
MALFORMED              it cannot be read (protobuf, JSON, a bad regex)     400   INVALID_ARGUMENT
BAD_REQUEST            well-formed, but of the wrong shape (names field)   422   INVALID_ARGUMENT
=====================  ==================================================  ====  ======================

The WebSocket face answers every kind with the answer itself (its `header.status` says what
went wrong), so one bad request never ends the connection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

import grpc

from plait.errors import BadRequest, MalformedRequest
from plait.proto.plait_raw_pb2 import RawDataRequest
from plait.wire.messages import StatusProto, error_status

Code = grpc.StatusCode


class Failure(enum.Enum):
    EXECUTOR_ERROR = 'executor error'
    EXECUTOR_REFUSED = 'executor refused'
    UNKNOWN_ENDPOINT = 'unknown endpoint'
    NOT_SERVED = 'not served'
    UNAVAILABLE = 'unavailable'
    TIMEOUT = 'timeout'
    NETWORK_ERROR = 'network error'
    REFUSED = 'refused'
    TOO_LARGE = 'too large'
    MALFORMED = 'malformed'
    BAD_REQUEST = 'bad request'


@dataclass(slots=True)
class Outcome:
    """What became of one request: `response` is always the answer to send (its header.status
    is ERROR when `failure` is set)."""

    response: RawDataRequest
    failure: Optional[Failure] = None

    @classmethod
    def refused(cls, error: BadRequest, request_id: str = '') -> 'Outcome':
        """A request the gateway cannot take: MALFORMED or BAD_REQUEST, with `error`'s message."""
        response = RawDataRequest()
        if request_id:
            response.header.request_id = request_id
        response.header.status.CopyFrom(error_status(str(error), name='BadRequest'))
        return cls(response, Failure.MALFORMED if isinstance(error, MalformedRequest) else Failure.BAD_REQUEST)

    @property
    def description(self) -> str:
        return self.response.header.status.description


# the gRPC code of a failed executor call -> the kind of failure
FAILURE_OF_CODE = {
    Code.DEADLINE_EXCEEDED: Failure.TIMEOUT,
    Code.UNAVAILABLE: Failure.UNAVAILABLE,
    Code.NOT_FOUND: Failure.NOT_SERVED,
    Code.INVALID_ARGUMENT: Failure.REFUSED,
    Code.RESOURCE_EXHAUSTED: Failure.TOO_LARGE,
}


def failure_of_code(code: Code) -> Failure:
    return FAILURE_OF_CODE.get(code, Failure.NETWORK_ERROR)


def executor_outcome(response: RawDataRequest) -> Outcome:
    """A routed answer: failed when an executor put an error in its status; EXECUTOR_REFUSED
    when the executor's runtime refused the request's shape before calling the method (a
    parameter that does not fit its pydantic model, a generator called with post: `BadRequest`)."""
    status = response.header.status
    if status.code != StatusProto.ERROR:
        return Outcome(response)
    refused = status.exception.name == 'BadRequest'
    return Outcome(response, Failure.EXECUTOR_REFUSED if refused else Failure.EXECUTOR_ERROR)


HTTP_STATUS = {
    None: 200,
    Failure.EXECUTOR_ERROR: 500,
    Failure.EXECUTOR_REFUSED: 422,
    Failure.UNKNOWN_ENDPOINT: 404,
    Failure.NOT_SERVED: 503,
    Failure.UNAVAILABLE: 503,
    Failure.TIMEOUT: 504,
    Failure.NETWORK_ERROR: 500,
    Failure.REFUSED: 400,
    Failure.TOO_LARGE: 413,
    Failure.MALFORMED: 400,
    Failure.BAD_REQUEST: 422,
}

# failures a gRPC face ends the call for, with this code, instead of sending the answer
GRPC_ABORT_UNARY = {
    Failure.UNKNOWN_ENDPOINT: Code.NOT_FOUND,
    Failure.NOT_SERVED: Code.NOT_FOUND,
    Failure.REFUSED: Code.INVALID_ARGUMENT,
    Failure.TOO_LARGE: Code.RESOURCE_EXHAUSTED,
    Failure.MALFORMED: Code.INVALID_ARGUMENT,
    Failure.BAD_REQUEST: Code.INVALID_ARGUMENT,
}
# on a stream an unknown endpoint is answered, so the other requests of the stream go on
GRPC_ABORT_STREAM = {k: v for k, v in GRPC_ABORT_UNARY.items()
                     if k not in (Failure.UNKNOWN_ENDPOINT, Failure.NOT_SERVED)}
