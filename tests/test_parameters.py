"""Per-executor parameters as Jina has them: `two__k` reaches executor `two` only, as `k`;
`{'one': {...}}` gives executor `one` its own values; everyone else sees the shared keys."""

from __future__ import annotations

from plait import Client, Executor, Flow, requests
from plait.serve.parameters import for_executor


class ShowParameters(Executor):
    @requests
    def show(self, docs, parameters, **kwargs):
        return {'k': parameters.get('k'), 'keys': sorted(k for k in parameters if k != '__results__')}


def test_each_executor_sees_its_own_parameters(port: int) -> None:
    flow = Flow(port=port, quiet=True).add(uses=ShowParameters, name='one').add(uses=ShowParameters, name='two') \
        .add(uses=ShowParameters, name='three')
    with flow, Client(port=port) as client:
        response = client.post('/', parameters={'k': 0, 'two__k': 2, 'one': {'k': 1}}, return_responses=True)[0]
    results = response.parameters['__results__']
    assert results['one/rep-0'] == {'k': 1, 'keys': ['k', 'one']}
    assert results['two/rep-0'] == {'k': 2, 'keys': ['k', 'one']}
    assert results['three/rep-0'] == {'k': 0, 'keys': ['k', 'one']}


def test_for_executor() -> None:
    given = {'k': 0, 'two__k': 2, 'one__x': 1, '__results__': {}, 'a__': 3}
    assert for_executor(given, 'two') == {'k': 2, '__results__': {}, 'a__': 3}
    assert for_executor(given, 'one') == {'k': 0, 'x': 1, '__results__': {}, 'a__': 3}
    assert for_executor({}, 'one') == {}
