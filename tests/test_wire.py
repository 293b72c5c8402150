"""The wire layer: the layering rule it exists for, the one document join, the one error
status builder."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

from plait.errors import BadRequest, PlaitError
from plait.proto._docarray import docarray_pb2
from plait.wire.join import DataContentProto, doc_list_of, join_doc_lists, merge_data
from plait.wire.messages import StatusProto, error_status

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'plait'


def _plait_imports(path: pathlib.Path) -> set[str]:
    """Every plait module `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('plait'):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith('plait'))
    return found


def _imports_of(layer: str) -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): _plait_imports(p) for p in (PACKAGE / layer).rglob('*.py')}


@pytest.mark.parametrize('layer, forbidden', [
    ('wire', ('plait.serve', 'plait.clients', 'plait.orchestrate', 'plait.cli', 'plait.documents',
              'plait.executor', 'plait.request')),
    ('serve', ('plait.clients', 'plait.orchestrate', 'plait.cli')),
    ('clients', ('plait.serve', 'plait.orchestrate', 'plait.cli')),
    ('observability', ('plait.clients', 'plait.orchestrate', 'plait.cli')),
])
def test_layers_import_downward_only(layer, forbidden):
    def below(name: str) -> bool:
        return any(name == f or name.startswith(f + '.') for f in forbidden)

    wrong = {module: sorted(m for m in imported if below(m))
             for module, imported in _imports_of(layer).items()}
    assert not {m: w for m, w in wrong.items() if w}


# the package's base modules, below serve, clients and orchestrate
BASE = ['auth.py', 'config.py', 'documents.py', 'errors.py', 'excepts.py', 'executor.py', 'jina_options.py',
        'logs.py', 'options.py', 'policies.py', 'request.py', 'streams.py', 'uses.py', 'yaml_config.py']
# executor.py reaches up only lazily, inside functions: Executor.serve() builds a Deployment, and a
# class using @dynamic_batching is checked by the batching module when it is defined
LAZY_UP = {'executor.py': {'plait.orchestrate.deployment', 'plait.serve.batching'}}


@pytest.mark.parametrize('module', BASE)
def test_base_modules_import_no_layer_above(module):
    above = ('plait.serve', 'plait.clients', 'plait.orchestrate', 'plait.cli', 'plait.observability')
    up = {m for m in _plait_imports(PACKAGE / module) if m.startswith(above)}
    assert up == LAZY_UP.get(module, set())


def test_every_top_level_module_has_a_layer():
    placed = set(BASE) | {'__init__.py', 'testing.py'}  # the public API and the test helpers sit on top
    assert {p.name for p in PACKAGE.glob('*.py')} == placed


@pytest.mark.parametrize('module', ['streams.py', 'policies.py'])
def test_bottom_modules_import_nothing_of_plait(module):
    assert not _plait_imports(PACKAGE / module)


def _doc(doc_id: str, **fields: str) -> docarray_pb2.DocProto:
    doc = docarray_pb2.DocProto()
    if doc_id:
        doc.data['id'].text = doc_id
    for key, value in fields.items():
        doc.data[key].text = value
    return doc


def _tags(doc: docarray_pb2.DocProto, **tags: str) -> docarray_pb2.DocProto:
    doc.data['tags'].dict.SetInParent()
    for key, value in tags.items():
        doc.data['tags'].dict.data[key].text = value
    return doc


def _list(*docs: docarray_pb2.DocProto) -> docarray_pb2.DocListProto:
    out = docarray_pb2.DocListProto()
    out.docs.extend(docs)
    return out


def test_join_merges_by_id_field_by_field_in_order_of_first_appearance():
    first = _list(_tags(_doc('a', text='A1'), x='1'), _doc('b', text='B'), _doc('', text='anon'))
    second = _list(_tags(_doc('a', uri='u'), y='2'), _doc('c', text='C'))
    joined = join_doc_lists([first, second])
    assert [d.data['id'].text for d in joined.docs] == ['a', 'b', 'c', '']
    a = joined.docs[0]
    assert a.data['text'].text == 'A1' and a.data['uri'].text == 'u'   # fields of both
    assert dict((k, v.text) for k, v in a.data['tags'].dict.data.items()) == {'x': '1', 'y': '2'}  # key by key


def test_join_leaves_its_inputs_unchanged():
    first, second = _list(_doc('a', text='old')), _list(_doc('a', text='new'))
    before = first.SerializeToString()
    assert join_doc_lists([first, second]).docs[0].data['text'].text == 'new'  # later wins
    assert first.SerializeToString() == before


def test_merge_data_reads_both_document_forms():
    as_docs = DataContentProto()
    as_docs.docs.docs.append(_doc('a', text='A'))
    as_bytes = DataContentProto(docs_bytes=_list(_doc('b', text='B')).SerializeToString())
    merged = doc_list_of(merge_data([as_docs.SerializeToString(), as_bytes.SerializeToString()]))
    assert [d.data['id'].text for d in merged.docs] == ['a', 'b']
    one = as_docs.SerializeToString()
    assert merge_data([one]) is one  # nothing to join: the bytes pass through


def test_error_status_of_an_exception_and_of_a_message():
    try:
        raise BadRequest('no such endpoint', 'extra')
    except BadRequest as e:
        status = error_status(e, executor='exec0')
    assert status.code == StatusProto.ERROR
    assert status.exception.name == 'BadRequest' and list(status.exception.args) == ['no such endpoint', 'extra']
    assert status.exception.executor == 'exec0' and 'raise BadRequest' in ''.join(status.exception.stacks)
    assert status.description == repr(BadRequest('no such endpoint', 'extra'))

    status = error_status('deployment x is down')
    assert status.exception.name == 'InternalNetworkError' and status.description == 'deployment x is down'
    assert list(status.exception.args) == ['deployment x is down'] and not status.exception.stacks
    assert error_status('bad', name='BadRequest', stacks=['s']).exception.stacks == ['s']


def test_every_exception_class_is_a_plait_error():
    """Every exception class the package defines derives from PlaitError (errors.py draws the
    tree); only `Terminated`, a KeyboardInterrupt that `except Exception` must not catch, is not."""
    wrong = []
    for path in sorted(PACKAGE.rglob('*.py')):
        relative = path.relative_to(PACKAGE.parent).with_suffix('')
        if 'proto' in relative.parts or relative.name == '__main__':
            continue
        module = importlib.import_module('.'.join(relative.parts).removesuffix('.__init__'))
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) \
                    and value.__module__ == module.__name__ and not issubclass(value, PlaitError):
                wrong.append(f'{module.__name__}.{value.__name__}')
    assert not wrong
