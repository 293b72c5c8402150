"""Sharded deployments with `uses_before` / `uses_after`, and `no_reduce`, as Jina has them:
`uses_before` sees each request before the shards; `uses_after` gets every shard's answer, its
endpoint called with `docs_matrix` (one DocList per shard); with `no_reduce=True` an executor
joining several branches gets each branch's documents unmerged, as `docs_matrix` too."""

from __future__ import annotations

from typing import Any

import pytest
from topology_executors import Suffix as Branch

from plait import Client, Deployment, Document, DocumentArray, Executor, Flow, requests
from plait.errors import BadConfig


class Before(Executor):
    @requests
    def before(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.text = f'{doc.text}|before'


class Shard(Executor):
    @requests
    def shard(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.text = f'{doc.text}|shard{self.runtime_args.shard_id}'


class After(Executor):
    """Reduces by hand: one document per input document, its text the shards' texts joined."""

    @requests
    def after(self, docs: DocumentArray, docs_matrix: list, **kwargs: Any) -> DocumentArray:
        texts = sorted(doc.text for matrix in docs_matrix for doc in matrix)
        return DocumentArray([Document(id=docs[0].id, text=' + '.join(texts), tags={'inputs': len(docs_matrix)})])



class Mapped(Executor):
    """Says what `docs_map` held: which executor each input came from, and its texts."""

    @requests
    def mapped(self, docs: DocumentArray, docs_map: dict, docs_matrix: Any, **kwargs: Any) -> DocumentArray:
        seen = {name: [doc.text for doc in given] for name, given in docs_map.items()}
        return DocumentArray([Document(id=docs[0].id, tags={'map': seen, 'matrix': docs_matrix is not None})])


def test_uses_before_and_uses_after_around_shards() -> None:
    f = Flow(quiet=True).add(name='sharded', uses=Shard, shards=2, polling='ALL', uses_before=Before,
                             uses_after=After)
    with f, Client(port=f.port) as client:
        response = client.post('/', Document(id='d', text='x'), return_responses=True)[0]
    doc = response.docs[0]
    assert doc.text == 'x|before|shard0 + x|before|shard1' and doc.tags['inputs'] == 2
    assert {r.executor for r in response.routes} >= {'sharded/uses_before', 'sharded/uses_after'}


def test_a_sharded_deployment_with_uses_after_on_its_own() -> None:
    with Deployment(uses=Shard, shards=2, polling='ALL', uses_after=After, quiet=True) as dep:
        docs = Client(port=dep.port).post('/', Document(id='d', text='y'))
    assert docs[0].text == 'y|shard0 + y|shard1'


def test_no_reduce_hands_each_branch_to_the_joining_executor() -> None:
    f = Flow(quiet=True).add(name='a', uses=Branch, needs='gateway').add(name='b', uses=Branch, needs='gateway') \
        .add(name='join', uses=After, needs=['a', 'b'], no_reduce=True)
    with f, Client(port=f.port) as client:
        doc = client.post('/', Document(id='d', text='z'))[0]
    assert doc.text == 'z|a + z|b' and doc.tags['inputs'] == 2


def test_an_around_executor_is_started_here_or_served_elsewhere_not_both() -> None:
    with pytest.raises(BadConfig, match='give uses_after .* or uses_after_address .* not both'):
        Flow().add(uses=Shard, shards=2, uses_after=After, uses_after_address='127.0.0.1:1')


def test_docs_map_keys_each_input_by_the_executor_it_came_from() -> None:
    # as Jina builds it: {last executor on the input's route: its documents}; docs_matrix is given
    # for a single input too
    f = Flow(quiet=True).add(name='a', uses=Branch, needs='gateway').add(name='b', uses=Branch, needs='gateway') \
        .add(name='join', uses=Mapped, needs=['a', 'b'], no_reduce=True)
    with f, Client(port=f.port) as client:
        tags = client.post('/', Document(id='d', text='z'))[0].tags
        assert tags == {'map': {'a': ['z|a'], 'b': ['z|b']}, 'matrix': True}
    with Flow(quiet=True).add(name='one', uses=Mapped) as f, Client(port=f.port) as client:
        tags = client.post('/', Document(id='d', text='y'))[0].tags
        assert tags == {'map': {'gateway': ['y']}, 'matrix': True}
