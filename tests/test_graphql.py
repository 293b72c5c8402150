"""GraphQL at `/graphql` (`expose_graphql_endpoint=True`, also spelled `expose_graphql_endpont`
as in the seed's YAML): the mutation and the query send documents with parameters to an
endpoint and return their fields; errors come back as GraphQL errors; off by default."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_http_gateway import curl

from plait import DocumentArray, Executor, Flow, requests


class Tagger(Executor):
    @requests(on='/foo')
    def foo(self, docs: DocumentArray, parameters: dict, **kwargs) -> None:
        for d in docs:
            d.text = (d.text or '').upper()
            d.tags['factor'] = parameters.get('factor')

    @requests(on='/boom')
    def boom(self, docs: DocumentArray, **kwargs) -> None:
        raise ValueError('boom on purpose')


SEED_YAML = """
jtype: Flow
with:
  protocol: 'http'
  expose_graphql_endpont: True,
"""


@pytest.fixture(scope='module')
def flow():
    with Flow.load_config(SEED_YAML, quiet=True).add(uses=Tagger) as f:
        yield f


def graphql(f: Flow, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({'query': query, 'variables': variables or {}})
    code, text = curl(f'http://127.0.0.1:{f.port}/graphql', '-H', 'Content-Type: application/json', '-d', body)
    assert code == 200, text
    return json.loads(text)


def test_mutation_sends_docs_with_parameters_and_returns_fields(flow: Flow) -> None:
    answer = graphql(flow, '''
        mutation {
          docs(data: [{text: "hello", id: "d1", tags: {a: 1}}, {text: "world"}], execEndpoint: "/foo",
               parameters: {factor: 3}) { id text tags mimeType fields }
        }''')
    assert 'errors' not in answer, answer
    docs = answer['data']['docs']
    assert [d['text'] for d in docs] == ['HELLO', 'WORLD']
    assert docs[0]['id'] == 'd1' and docs[0]['tags'] == {'a': 1, 'factor': 3}
    assert docs[0]['fields']['text'] == 'HELLO' and docs[0]['mimeType'] is None


def test_query_with_variables(flow: Flow) -> None:
    answer = graphql(flow, 'query Q($d: [DocumentInput!]) { docs(data: $d, execEndpoint: "/foo") { text } }',
                     {'d': [{'text': 'q'}]})
    assert answer == {'data': {'docs': [{'text': 'Q'}]}}


def test_errors_are_graphql_errors(flow: Flow) -> None:
    answer = graphql(flow, 'mutation { docs(data: [{text: "x"}], execEndpoint: "/boom") { text } }')
    assert 'boom on purpose' in answer['errors'][0]['message']
    answer = graphql(flow, 'mutation { docs(data: [{text: "x"}], execEndpoint: "/nowhere") { text } }')
    assert "'/foo'" in answer['errors'][0]['message']  # names the served endpoints
    answer = graphql(flow, '{ nope }')
    assert answer['errors']


def test_graphql_is_off_by_default() -> None:
    with Flow(protocol='http', quiet=True) as f:
        assert curl(f'http://127.0.0.1:{f.port}/graphql', '-d', '{}')[0] == 404
