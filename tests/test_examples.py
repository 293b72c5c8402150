"""The examples users start from (`make demo`, examples/flow.yml) serve what they promise."""

from __future__ import annotations

from pathlib import Path

from plait import Client, Document, Flow
from plait.wire.ports import free_port

EXAMPLES = Path(__file__).parent.parent / 'examples'


def test_example_flow_yaml_serves_on_grpc_and_http():
    ports = [free_port(), free_port()]
    flow = Flow.load_config(str(EXAMPLES / 'flow.yml'), port=ports, quiet=True)
    assert list(flow.deployments) == ['cleaner', 'counter'] and flow.deployments['counter'].replicas == 2
    with flow:
        doc = Client(port=ports[0]).post('/', Document(text='  Hello   plait  World '))[0]
        assert doc.text == 'hello plait world' and doc.tags == {'words': 3}
        with Client(port=ports[1], protocol='http') as http:
            stats = http.post('/stats', [Document(text='a b'), Document(text='c')], return_responses=True)
        (key, value), = stats[0].parameters['__results__'].items()  # keyed by replica, as Jina keys it
        assert key in ('counter/rep-0', 'counter/rep-1') and value == {'documents': 2, 'words': 3}
