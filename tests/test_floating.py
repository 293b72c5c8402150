"""Floating deployments, as Jina has them: `Flow.add(..., floating=True)` gets the requests
(its predecessor's output), the answer never waits for it, its failures never fail the
request, and the next `.add()` chains after the last deployment that is not floating."""

from __future__ import annotations

import time
from typing import Any

import pytest

from topology_executors import Suffix as Tag

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.errors import BadConfig


class Recorder(Executor):
    """Slow, and writes what it got to `parameters['record']` (a path) when done."""

    @requests
    def record(self, docs: DocumentArray, parameters: dict, **kwargs: Any) -> None:
        time.sleep(float(parameters.get('seconds', 1.5)))
        if parameters.get('fail'):
            raise RuntimeError('the floating deployment failed')
        with open(parameters['record'], 'a') as f:
            f.write(','.join(doc.text for doc in docs) + '\n')


def test_the_answer_does_not_wait_for_a_floating_deployment(tmp_path, wait) -> None:
    record = tmp_path / 'record'
    f = Flow(quiet=True).add(uses=Tag, name='a').add(uses=Recorder, name='float', floating=True) \
        .add(uses=Tag, name='b')
    with f:
        with Client(port=f.port) as client:
            client.post('/', Document(text='warm'), parameters={'record': str(record), 'seconds': 0})
            wait(record.exists, timeout=10, what='the floating deployment to be warm')
            record.unlink()
            start = time.monotonic()
            response = client.post('/', Document(text='x'), parameters={'record': str(record)},
                                   return_responses=True)[0]
            took = time.monotonic() - start
            assert response.docs.texts == ['x|a|b']  # b chains after a, not after the floating one
            assert [r.executor for r in response.routes] == ['gateway', 'a', 'b']
            assert took < 1.0 and not record.exists()  # the floating one still sleeps
            wait(record.exists, timeout=10, what='the floating deployment to get the request')
    assert record.read_text() == 'x|a\n'  # it got a's output


def test_a_failing_floating_deployment_never_fails_the_request(tmp_path) -> None:
    f = Flow(quiet=True).add(uses=Recorder, name='float', floating=True).add(uses=Tag, name='b')
    with f:
        with Client(port=f.port) as client:
            docs = client.post('/', Document(text='y'), parameters={'fail': True, 'seconds': 0,
                                                                     'record': str(tmp_path / 'r')})
    assert docs.texts == ['y|b']  # fed from the gateway (needs the start), b too


def test_nothing_can_follow_a_floating_deployment() -> None:
    f = Flow().add(uses=Tag, name='a').add(uses=Recorder, name='float', floating=True)
    with pytest.raises(BadConfig, match="needs 'float', which is floating"):
        f.add(uses=Tag, name='b', needs='float')


def test_floating_in_yaml(tmp_path) -> None:
    flow = Flow.load_config('jtype: Flow\nexecutors:\n  - name: a\n  - name: f\n    floating: true\n  - name: b\n')
    targets = {t.name: t for t in flow.gateway_config().deployments}
    assert targets['f'].floating and targets['b'].needs == ['a']


def test_a_deployment_alone_refuses_floating() -> None:
    from plait import Deployment

    with pytest.raises(BadConfig, match='floating=True applies to a deployment in a Flow'):
        with Deployment(uses=Tag, floating=True, quiet=True):
            pass
