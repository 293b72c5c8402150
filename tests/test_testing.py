"""plait.testing: an Executor in this process, and the gateway's routing over fake replicas,
with no process started and no socket opened."""

from __future__ import annotations

import asyncio

import pytest

from plait import Document, DocumentArray, Executor, requests
from plait.errors import BadRequest, ExecutorError, InternalNetworkError, RequestTimeout
from plait.testing import ExecutorHarness, FakeReplica, GatewayHarness


class Greeter(Executor):
    def __init__(self, greeting: str = 'hello', **kwargs):
        super().__init__(**kwargs)
        self.greeting = greeting

    @requests(on='/greet')
    def greet(self, docs: DocumentArray, parameters: dict, **kwargs):
        for doc in docs:
            doc.text = f'{self.greeting} {doc.text} {parameters.get("mark", "")}'.strip()

    @requests(on='/count')
    def count(self, docs: DocumentArray, **kwargs):
        return {'count': len(docs), 'name': self.runtime_args.name}

    @requests(on='/fail')
    def fail(self, docs: DocumentArray, **kwargs):
        raise ZeroDivisionError('no')


class Tagger(Executor):
    def __init__(self, key: str = 'k', **kwargs):
        super().__init__(**kwargs)
        self.key = key

    @requests
    async def tag(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.tags[self.key] = True


def test_executor_harness_serves_the_executor_as_its_worker_does():
    with ExecutorHarness(Greeter, uses_with={'greeting': 'hi'}, name='greeter') as harness:
        docs = harness.post('/greet', DocumentArray([Document(text='a'), Document(text='b')]),
                            parameters={'mark': '!'}, request_size=1)
        assert docs.texts == ['hi a !', 'hi b !']
        response = harness.post('/count', DocumentArray([Document()] * 3), return_responses=True)[0]
        assert response.parameters['__results__'] == {'greeter/rep-0': {'count': 3.0, 'name': 'greeter'}}
        with pytest.raises(ExecutorError, match='ZeroDivisionError'):
            harness.post('/fail', Document())
        with pytest.raises(ExecutorError, match='not served by executor greeter'):
            harness.post('/nope', Document())
        assert {'/greet', '/count', '/fail'} <= set(harness.endpoints().endpoints)


def test_a_chain_and_a_join_route_as_a_flow_does():
    with ExecutorHarness(Greeter) as greeter, ExecutorHarness(Tagger, uses_with={'key': 'x'}) as x, \
            ExecutorHarness(Tagger, uses_with={'key': 'y'}) as y:
        # greeter -> (x, y in parallel) -> join: documents merged field by field
        with GatewayHarness({'greeter': FakeReplica(greeter), 'x': FakeReplica(x), 'y': FakeReplica(y),
                             'join': FakeReplica()},
                            needs={'x': ['greeter'], 'y': ['greeter'], 'join': ['x', 'y']}) as gateway:
            assert gateway.ready()
            docs = gateway.post('/greet', DocumentArray([Document(id='d1', text='a')]))
            assert docs.texts == ['hello a'] and docs[0].tags == {'x': True, 'y': True}


def test_a_down_replica_is_routed_around_and_a_down_deployment_fails_by_name():
    good, bad = FakeReplica(), FakeReplica(fail='UNAVAILABLE')
    with GatewayHarness({'echo': [bad, good]}) as gateway:
        for _ in range(4):
            assert gateway.post('/', Document(text='t')).texts == ['t']
        assert len(good.requests) == 4
        assert bad.state.serving is False                       # marked down when it failed
        assert gateway.core.not_ready()[0]['address'] == 'fake://echo/shard-0/rep-0'
    with GatewayHarness({'echo': [FakeReplica(fail='UNAVAILABLE')]}) as gateway:
        with pytest.raises(InternalNetworkError, match='deployment echo at address'):
            gateway.post('/', Document())


def test_readiness_follows_the_replicas_health():
    replica = FakeReplica()
    with GatewayHarness({'a': replica}) as gateway:
        assert gateway.ready()
        replica.serving = False
        assert not gateway.ready() and gateway.core.not_ready()[0]['reason'] == 'marked down by the test'
        replica.serving = True
        assert gateway.ready()


def test_timeouts_unknown_endpoints_and_executor_errors_as_the_client_sees_them():
    async def slow(request):
        await asyncio.sleep(5)
        return request

    with GatewayHarness({'slow': FakeReplica(slow)}, timeout_send=50) as gateway:
        with pytest.raises(RequestTimeout, match='timeout_send'):
            gateway.post('/', Document())
    with ExecutorHarness(Greeter) as greeter, GatewayHarness({'greeter': FakeReplica(greeter)}) as gateway:
        with pytest.raises(BadRequest, match="endpoint '/nope' is not served by any executor"):
            gateway.post('/nope', Document())
        with pytest.raises(ExecutorError, match='ZeroDivisionError'):
            gateway.post('/fail', Document())
        assert gateway.post('/count', Document(), return_responses=True)[0].status.code == 0
