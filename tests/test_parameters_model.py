"""Pydantic models as `parameters`, as Jina allows on docarray-v2 endpoints: the method gets a
validated model, a parameter that does not fit is a clear error naming the field (ERROR status
over gRPC, HTTP 422), and discovery publishes the model's schema."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest
from docarray import DocList
from docarray.documents import TextDoc
from google.protobuf import empty_pb2, json_format
from pydantic import BaseModel

from plait import Client, Deployment, Executor, requests
from plait.errors import ExecutorError
from plait.proto import jina_common_pb2_grpc


class Settings(BaseModel):
    times: int = 1
    suffix: str = '!'


class Repeat(Executor):
    @requests(on='/repeat')
    def repeat(self, docs: DocList[TextDoc], parameters: Settings, **kwargs) -> DocList[TextDoc]:
        assert isinstance(parameters, Settings)
        for doc in docs:
            doc.text = doc.text * parameters.times + parameters.suffix
        return docs


@pytest.fixture(scope='module')
def deployment():
    with Deployment(uses=Repeat, protocol=['grpc', 'http'], quiet=True) as dep:
        yield dep


def test_the_method_gets_a_validated_model(deployment) -> None:
    with Client(port=deployment.ports[0]) as client:
        docs = client.post('/repeat', DocList[TextDoc]([TextDoc(text='ab')]), parameters={'times': 2},
                           return_type=DocList[TextDoc])
    assert docs.text == ['abab!']


def test_a_parameter_that_does_not_fit_is_refused_naming_the_field(deployment) -> None:
    with Client(port=deployment.ports[0]) as client, pytest.raises(ExecutorError, match=r'times: .*integer') as err:
        client.post('/repeat', DocList[TextDoc]([TextDoc(text='ab')]), parameters={'times': 'many'})
    assert err.value.name == 'BadRequest' and 'Settings' in str(err.value)
    body = json.dumps({'exec_endpoint': '/repeat', 'data': [{'text': 'ab'}], 'parameters': {'times': 'many'}})
    done = subprocess.run(['curl', '-sS', '-m', '20', '-w', '\n%{http_code}', '-H', 'Content-Type: application/json',
                           '-d', body, f'http://127.0.0.1:{deployment.ports[1]}/post'],
                          capture_output=True, text=True, timeout=30)
    answer, code = done.stdout.rsplit('\n', 1)
    assert code == '422' and 'times' in json.loads(answer)['header']['status']['description']


def test_discovery_publishes_the_parameters_schema(deployment) -> None:
    with grpc.insecure_channel(f'127.0.0.1:{deployment.ports[0]}') as channel:
        reply = jina_common_pb2_grpc.JinaDiscoverEndpointsRPCStub(channel).endpoint_discovery(empty_pb2.Empty(),
                                                                                             timeout=10)
    parameters = json_format.MessageToDict(reply.schemas)['/repeat']['parameters']
    assert parameters['name'] == 'Settings'
    assert set(parameters['model']['properties']) == {'times', 'suffix'}
