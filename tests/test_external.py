"""External executors, as Jina has them: `Flow.add(external=True, host=..., port=...)` routes
to an executor served elsewhere (here another Deployment), which the Flow does not start;
several replica addresses are balanced; `grpc_metadata` goes with every call to it (and the
Flow's own secret never does); readiness includes it."""

from __future__ import annotations


import pytest

from topology_executors import Suffix as Tag
from topology_executors import Suffix as WhoAmI

from plait import Client, Deployment, Document, Flow
from plait.errors import BadConfig


def test_a_flow_routes_to_an_executor_served_elsewhere() -> None:
    with Deployment(uses=WhoAmI, name='elsewhere', quiet=True) as outside:
        f = Flow(quiet=True).add(uses=Tag, name='local').add(name='ext', external=True, host='127.0.0.1',
                                                             port=outside.port)
        assert [p.label for p in f._processes() if p.label.startswith('ext')] == []  # not started by the Flow
        with f:
            assert f.is_flow_ready()
            with Client(port=f.port) as client:
                assert client.post('/', Document(text='x')).texts == ['x|local|elsewhere']
        assert outside.is_deployment_ready()  # the Flow left it running


def test_several_replica_addresses_are_balanced() -> None:
    with Deployment(uses=WhoAmI, name='one', quiet=True) as a, Deployment(uses=WhoAmI, name='two', quiet=True) as b:
        f = Flow(quiet=True).add(name='ext', external=True, host=[f'127.0.0.1:{a.port}', f'grpc://127.0.0.1:{b.port}'])
        with f, Client(port=f.port) as client:
            served = {client.post('/', Document(text='y'))[0].text for _ in range(8)}
    assert served == {'y|one', 'y|two'}


def test_grpc_metadata_goes_with_every_call() -> None:
    with Deployment(uses=WhoAmI, name='guarded', auth_token='ext-token-1', quiet=True) as outside:
        with_token = Flow(quiet=True).add(name='ext', external=True, host='127.0.0.1', port=outside.port,
                                          grpc_metadata={'authorization': 'Bearer ext-token-1'})
        with with_token, Client(port=with_token.port) as client:
            assert client.post('/', Document(text='z')).texts == ['z|guarded']
        without = Flow(quiet=True, timeout_ready=3000).add(name='ext', external=True, host='127.0.0.1',
                                                           port=outside.port)
        with without, Client(port=without.port) as client:
            with pytest.raises(Exception, match='(?i)unauthenticated|token'):
                client.post('/', Document(text='z'))


def test_external_needs_an_address_and_a_flow() -> None:
    with pytest.raises(BadConfig, match='external=True needs host='):
        Flow().add(name='ext', external=True)
    with pytest.raises(BadConfig, match='a Deployment on its own has nothing to start'):
        with Deployment(external=True, host='127.0.0.1', port=1, quiet=True):
            pass
