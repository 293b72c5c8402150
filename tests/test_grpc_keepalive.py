"""A call that runs longer than a few keepalive intervals survives: plait's servers accept the
keepalive pings their peers send while no data flows (plait's and Jina's clients ping every
~10 s, also during a long call). gRPC's server default accepts one such ping per 5 minutes and
answers more with GOAWAY "too_many_pings", which failed every call longer than ~40 s. Here a
client pinging every 1.5 s holds a 7.5 s call, against an executor and through a gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from plait import Deployment, Document, DocumentArray, Executor, Flow, requests
from plait.documents import encode_docs
from plait.proto import jina_data_pb2

UNARY = '/jina.JinaSingleDataRequestRPC/process_single_data'
CALL_SECONDS = 7.5  # pings at 1.5 s: without the server accepting them, its third strike (6 s) ends the call
FAST_PINGS = [('grpc.keepalive_time_ms', 1500), ('grpc.keepalive_timeout_ms', 1000),
              ('grpc.keepalive_permit_without_calls', 1), ('grpc.http2.max_pings_without_data', 0)]


class Slow(Executor):
    @requests
    async def slow(self, docs: DocumentArray, **kwargs: Any) -> None:
        await asyncio.sleep(CALL_SECONDS)
        for doc in docs:
            doc.tags['slept'] = True


def _request() -> bytes:
    req = jina_data_pb2.DataRequestProto()
    req.header.request_id = 'long-call'
    req.header.exec_endpoint = '/'
    encode_docs(DocumentArray([Document(text='a')]), req.data)
    return req.SerializeToString()


def _long_call(port: int) -> jina_data_pb2.DataRequestProto:
    with grpc.insecure_channel(f'127.0.0.1:{port}', options=FAST_PINGS) as channel:
        call = channel.unary_unary(UNARY, request_serializer=None,
                                   response_deserializer=jina_data_pb2.DataRequestProto.FromString)
        return call(_request(), timeout=CALL_SECONDS + 20)


@pytest.mark.parametrize('serve', ['executor', 'gateway'])
def test_a_long_call_with_frequent_keepalive_pings_is_answered(serve: str) -> None:
    server = Deployment(uses=Slow, quiet=True) if serve == 'executor' else Flow(quiet=True).add(uses=Slow)
    with server:
        answer = _long_call(server.port)
    assert answer.header.status.code == answer.header.status.SUCCESS, answer.header.status
    assert answer.header.request_id == 'long-call'
