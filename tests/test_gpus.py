"""GPU placement as Jina does it: CUDA_VISIBLE_DEVICES=RR... gives each replica one device,
round-robin; each replica process's environment shows the device it got."""

from __future__ import annotations

import os
import shutil

import pytest
from worker_executors import Appender

from plait import Client, Deployment, Executor, Flow, requests
from plait.errors import BadConfig
from plait.orchestrate.gpus import devices_of


class ShowDevice(Executor):
    @requests
    def show(self, docs, **kwargs):
        return {'device': os.environ.get('CUDA_VISIBLE_DEVICES'), 'replica': self.runtime_args.replica_id}


def test_each_replica_gets_its_device_round_robin(port: int) -> None:
    with Deployment(uses=ShowDevice, name='enc', replicas=3, port=port, env={'CUDA_VISIBLE_DEVICES': 'RR1:3'},
                    quiet=True):
        seen: dict[int, str] = {}
        with Client(port=port) as client:
            for _ in range(100):  # the gateway balances over the replicas: each answers soon
                (result,) = client.post('/', return_responses=True)[0].parameters['__results__'].values()
                seen[int(result['replica'])] = result['device']
                if len(seen) == 3:
                    break
    assert seen == {0: '1', 1: '2', 2: '1'}


def test_a_flow_passes_its_env_to_each_deployment() -> None:
    flow = Flow(env={'CUDA_VISIBLE_DEVICES': 'RR0,3'}, quiet=True).add(uses=Appender, name='a', replicas=3)
    envs = [p.extra_env['CUDA_VISIBLE_DEVICES'] for p in flow.deployments['a'].worker_processes()]
    assert envs == ['0', '3', '0']


@pytest.mark.parametrize('spec, devices', [
    ('RR0,2', ['0', '2']), ('RR[0:4:2]', ['0', '2']), ('RR3', ['3']), ('RR1:3', ['1', '2']),
    ('RRGPU-1234', ['GPU-1234']),
])
def test_device_forms(spec: str, devices: list[str]) -> None:
    assert devices_of(spec) == devices


@pytest.mark.skipif(shutil.which('nvidia-smi') is not None, reason='this machine has GPUs to count')
def test_counting_the_gpus_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CUDA_TOTAL_DEVICES', '2')
    assert devices_of('RR') == ['0', '1'] and devices_of('RR1:') == ['1']
    monkeypatch.delenv('CUDA_TOTAL_DEVICES')
    with pytest.raises(BadConfig, match="CUDA_VISIBLE_DEVICES='RR': cannot count the GPUs"):
        Deployment(uses=Appender, replicas=2, env={'CUDA_VISIBLE_DEVICES': 'RR'}, quiet=True)
