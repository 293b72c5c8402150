"""Flow YAML: the seeds' `jtype: Flow` examples load, a YAML Flow with executors, shards,
polling and `when` builds the same graph as Python and serves, and save_config round-trips."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from executors import Stamp, Trace

from plait import Document, DocumentArray, Flow
from plait.errors import BadConfig

# the gateway YAML examples of the seeds, as written (trailing commas included)
SEED_YAMLS = {
    'grpc': ("jtype: Flow\nwith:\n  protocol: 'grpc'\n", {'protocols': ['grpc']}),
    'http': ("jtype: Flow\nwith:\n  protocol: 'http'\n", {'protocols': ['http']}),
    'websocket': ("jtype: Flow\nwith:\n  protocol: 'websocket'\n", {'protocols': ['websocket']}),
    'expose_endpoints': (('jtype: Flow\nwith:\n  protocol: http\n  expose_endpoints:\n    /foo:\n'
                         '      summary: my endpoint\n'),
                         {'expose_endpoints': {'/foo': {'summary': 'my endpoint'}}}),
    'expose_put': (('jtype: Flow\nwith:\n  protocol: http\n  expose_endpoints:\n    /bar:\n'
                   '      methods: ["PUT"]\n      summary: my endpoint\n      tags:\n        - fine-tuning\n'),
                   {'expose_endpoints': {'/bar': {'methods': ['PUT'], 'summary': 'my endpoint',
                                                  'tags': ['fine-tuning']}}}),
    'hide_endpoints': (("jtype: Flow\nwith:\n  protocol: 'http'\n  no_debug_endpoints: True, \n"
                       "  no_crud_endpoints: True\n"), {'no_debug_endpoints': True, 'no_crud_endpoints': True}),
    'cors': ("jtype: Flow\nwith:\n  protocol: 'http'\n  cors: True, \n", {'cors': True}),
    'graphql': ("jtype: Flow\nwith:\n  protocol: 'http'\n  expose_graphql_endpont: True, \n",
                {'expose_graphql_endpoint': True}),
}


@pytest.mark.parametrize('name', sorted(SEED_YAMLS))
def test_seed_yaml_examples_load(name: str, tmp_path: Path) -> None:
    text, expected = SEED_YAMLS[name]
    path = tmp_path / 'flow.yml'
    path.write_text(text)
    config = Flow.load_config(str(path)).gateway_config()
    for key, value in expected.items():
        actual = getattr(config, key)
        # `True, ` in the seeds is YAML for the string 'True,': it must still switch the option on
        assert actual == value or (value is True and actual), (key, actual)


FLOW_YAML = """
jtype: Flow
version: '1'
with:
  protocol: grpc
  timeout_send: 5000
  prefetch: 10
executors:
  - name: first
    uses: executors:Trace
    replicas: 2
  - name: second
    uses: my_exec.yml
    needs: gateway
    shards: 2
    polling: {'/search': ALL, '*': ANY}
    when: {tags__key: {$eq: 1}}
  - name: join
    needs: [first, second]
"""

EXEC_YAML = """
jtype: Upper
with:
  suffix: '!'
py_modules:
  - my_exec.py
"""

EXEC_PY = """
from plait import DocumentArray, Executor, requests


class Upper(Executor):
    def __init__(self, suffix: str = '', **kwargs):
        super().__init__(**kwargs)
        self.suffix = suffix

    @requests
    def upper(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.text = (doc.text or '').upper() + self.suffix
"""


def test_yaml_flow_builds_the_graph_and_serves(tmp_path: Path) -> None:
    (tmp_path / 'flow.yml').write_text(FLOW_YAML)
    (tmp_path / 'my_exec.yml').write_text(EXEC_YAML)
    (tmp_path / 'my_exec.py').write_text(textwrap.dedent(EXEC_PY))
    f = Flow.load_config(str(tmp_path / 'flow.yml'), quiet=True)
    config = f.gateway_config()
    assert (config.timeout_send, config.prefetch) == (5000, 10)
    first, second, join = config.deployments
    assert [d.name for d in config.deployments] == ['first', 'second', 'join']
    assert (first.needs, second.needs, join.needs) == (['gateway'], ['gateway'], ['first', 'second'])
    assert [len(s) for s in first.shards] == [2] and [len(s) for s in second.shards] == [1, 1]
    assert (second.polling_for('/search'), second.polling_for('/index')) == ('ALL', 'ANY')
    assert second.when == {'tags__key': {'$eq': 1}}
    with f:
        out = f.post('/', DocumentArray([Document(id='one', text='a', tags={'key': 1}),
                                         Document(id='two', text='b', tags={'key': 2})]))
        by_id = {d.id: d for d in out}
    assert sorted(by_id) == ['one', 'two']
    assert (by_id['one'].text, by_id['one'].tags['trace']) == ('A!', ['first'])
    assert (by_id['two'].text, by_id['two'].tags['trace']) == ('b', ['first'])  # `second` never saw it


def test_save_config_round_trips(tmp_path: Path, port: int) -> None:
    f = (Flow(protocol='grpc', port=port, timeout_send=2000, compression='gzip', quiet=True)
         .add(name='tracer', uses=Trace, replicas=2)
         .add(name='stamp', uses=Stamp, uses_with={'field': 'uri', 'value': 'saved'}, needs='gateway',
              shards=2, polling={'/search': 'ALL', '*': 'ANY'}, when={'tags__key': {'$gte': 1}})
         .add(name='join', needs=['tracer', 'stamp']))
    path = tmp_path / 'saved.yml'
    f.save_config(str(path))
    saved = yaml.safe_load(path.read_text())
    assert saved['jtype'] == 'Flow' and [e['name'] for e in saved['executors']] == ['tracer', 'stamp', 'join']

    loaded = Flow.load_config(str(path), quiet=True)

    def shape(flow: Flow) -> dict:
        config = flow.gateway_config()
        return {'ports': config.ports, 'protocols': config.protocols, 'timeout_send': config.timeout_send,
                'compression': config.compression,
                'deployments': [(d.name, d.needs, d.polling, d.when, [len(s) for s in d.shards])
                                for d in config.deployments]}

    assert shape(loaded) == shape(f)
    assert loaded.deployments['stamp'].uses_with == {'field': 'uri', 'value': 'saved'}
    with loaded:
        out = loaded.post('/', DocumentArray([Document(id='k1', tags={'key': 1}), Document(id='k0', tags={'key': 0})]))
        by_id = {d.id: d for d in out}
    assert (by_id['k1'].uri, by_id['k1'].tags['trace']) == ('saved', ['tracer'])
    assert (by_id['k0'].uri, by_id['k0'].tags['trace']) == (None, ['tracer'])


@pytest.mark.parametrize('text, message', [
    ('jtype: Executor\n', 'jtype: Flow'),
    ('jtype: Flow\nexecutors: {a: 1}\n', 'list'),
    ('jtype: Flow\nexecutor: []\n', 'unknown top-level'),
    ('jtype: Flow\nexecutors:\n  - uses: executors:Trace\n    when: {tags__key: {$like: 1}}\n', r'\$like'),
])
def test_bad_flow_yaml_is_refused_clearly(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / 'bad.yml'
    path.write_text(text)
    with pytest.raises(BadConfig, match=message):
        Flow.load_config(str(path))
