"""Executor, @requests and `uses` resolution, in process (no sockets)."""

from __future__ import annotations

import pytest
from docarray import BaseDoc, DocList

from plait import Document, DocumentArray, Executor, requests
from plait.errors import BadConfig, UsesNotFound
from plait.executor import DEFAULT_ENDPOINT, DRY_RUN_ENDPOINT, NoOpExecutor
from plait.uses import class_reference, load_class_reference, resolve_uses


class Base(Executor):
    @requests
    def default(self, docs, **kwargs):
        pass

    @requests(on=['/a', '/b'])
    def ab(self, docs, **kwargs):
        pass


class Child(Base):
    @requests(on='/b')
    def b_override(self, docs, parameters, **kwargs):
        pass


class Doc(BaseDoc):
    x: int = 0


class Typed(Executor):
    @requests(on='/t')
    def t(self, docs: DocList[Doc], **kwargs) -> DocList[Doc]:
        return docs

    @requests(on='/narrow')
    def narrow(self, docs):
        return docs


def test_endpoint_table_and_inheritance():
    assert Base.requests == {DEFAULT_ENDPOINT: 'default', '/a': 'ab', '/b': 'ab'}
    assert Child.requests == {DEFAULT_ENDPOINT: 'default', '/a': 'ab', '/b': 'b_override'}
    child = Child()
    assert child.resolve_endpoint('/b') == '/b'
    assert child.resolve_endpoint('/anything') == DEFAULT_ENDPOINT
    assert child.resolve_endpoint(DRY_RUN_ENDPOINT) == DRY_RUN_ENDPOINT
    assert Typed().resolve_endpoint('/nope') is None


def test_endpoint_specs_carry_document_types_and_accepted_kwargs():
    specs = Typed().endpoint_specs
    assert specs['/t'].input_type.doc_type is Doc and specs['/t'].output_type.doc_type is Doc
    assert specs['/narrow'].input_type is DocumentArray
    assert specs['/narrow'].call_kwargs(docs=1, parameters={}) == {'docs': 1}
    assert Base().endpoint_specs['/a'].call_kwargs(docs=1, parameters={}) == {'docs': 1, 'parameters': {}}


def test_requests_rejects_bad_endpoints():
    with pytest.raises(TypeError):
        requests(on=[''])(lambda self, docs: None)


def test_requests_rebinding_and_runtime_args():
    ex = Base(requests={'/c': 'ab'}, runtime_args={'name': 'e1', 'replica_id': 2}, metas={'workspace': None})
    assert ex.requests['/c'] == 'ab' and ex.runtime_args.replica_id == 2 and ex.metas.name == 'e1'
    with pytest.raises(BadConfig, match="has no method 'missing'"):
        Base(requests={'/c': 'missing'})


def test_document_array_conveniences():
    da = DocumentArray([Document(text='a')])
    da.append(Document(text='b', tags={'k': 1}))
    assert da.texts == ['a', 'b'] and da.tags == [{}, {'k': 1}] and len(da.ids) == 2
    assert DocumentArray().texts == []


def test_resolve_uses_variants(tmp_path):
    assert resolve_uses(None).cls is NoOpExecutor
    assert resolve_uses(Base).cls is Base
    assert resolve_uses('Child').cls is Child  # registered class name
    assert resolve_uses('plait.executor:NoOpExecutor').cls is NoOpExecutor
    assert resolve_uses('plait.executor.NoOpExecutor').cls is NoOpExecutor
    spec = resolve_uses(Base, uses_with={'a': 1}, uses_metas={'m': 2})
    assert spec.uses_with == {'a': 1} and spec.metas == {'m': 2}
    with pytest.raises(UsesNotFound, match='not a subclass'):
        resolve_uses(int)
    with pytest.raises(UsesNotFound, match='no Executor class'):
        resolve_uses('NoSuchExecutorAnywhere')
    with pytest.raises(UsesNotFound, match="has no 'Nope'"):
        resolve_uses('plait.executor:Nope')
    (tmp_path / 'e.yml').write_text('jtype: Child\nwith:\n  z: 1\nmetas:\n  name: c\n')
    spec = resolve_uses(str(tmp_path / 'e.yml'))
    assert spec.cls is Child and spec.uses_with == {'z': 1} and spec.metas == {'name': 'c'}
    (tmp_path / 'bad.yml').write_text('with:\n  z: 1\n')
    with pytest.raises(BadConfig, match='jtype'):
        resolve_uses(str(tmp_path / 'bad.yml'))


def test_class_reference_round_trip():
    assert class_reference(NoOpExecutor) == 'plait.executor:NoOpExecutor'

    class Local(Executor):
        @requests
        def go(self, docs, **kwargs):
            pass

    ref = class_reference(Local)
    assert ref.startswith('pickle:')
    assert load_class_reference(ref).requests == {DEFAULT_ENDPOINT: 'go'}
