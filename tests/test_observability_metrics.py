"""Prometheus metrics (monitoring=True): real scrapes of every process of a Flow, parsed with
prometheus_client's own text parser, with exact counts after known traffic; Jina's metric
names and labels; `@monitor` and `self.monitor`; replicas told apart; restarts; a monitoring
port in use; and nothing imported or counted when monitoring is off."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from plait import (AsyncClient, Client, Deployment, Document, DocumentArray, Executor, Flow, dynamic_batching, monitor,
                   requests)
from plait.errors import ExecutorError
from plait.wire.ports import free_port


class Counted(Executor):
    @requests
    def work(self, docs: DocumentArray, **kwargs: Any) -> None:
        with self.monitor('tokenize_seconds', 'time to tokenize'):
            for d in docs:
                d.text = (d.text or '') + '!'
        self.embed(docs)

    @monitor(name='embed_seconds', documentation='time to embed')
    def embed(self, docs: DocumentArray) -> None:
        pass

    @monitor()
    def unused(self) -> None:
        pass


class FailsOnFail(Executor):
    @requests(on='/fail')
    def fail(self, docs: DocumentArray, **kwargs: Any) -> None:
        raise ValueError('failing on purpose')

    @requests
    def ok(self, docs: DocumentArray, **kwargs: Any) -> None:
        pass


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the Prometheus text at 127.0.0.1:port, by (name, sorted labels)."""
    text = httpx.get(f'http://127.0.0.1:{port}/metrics', timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert found, f'no sample {name}{labels}'
    return sum(found)


def labels_of(samples: dict, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls) in samples if n == name and label in dict(ls)}


@pytest.fixture(scope='module')
def monitored() -> Any:
    gateway_port, rep0, rep1 = free_port(), free_port(), free_port()
    f = (Flow(monitoring=True, port_monitoring=gateway_port, quiet=True)
         .add(name='counted', uses=Counted, replicas=2, port_monitoring=f'{rep0},{rep1}')
         .add(name='checker', uses=FailsOnFail))
    with f:
        client = Client(port=f.port)
        for _ in range(5):
            client.post('/', DocumentArray([Document(text=str(i)) for i in range(3)]))
        for _ in range(2):
            with pytest.raises(ExecutorError):
                client.post('/fail', DocumentArray([Document(text='x')]))
        yield f, gateway_port, (rep0, rep1)


def test_every_process_serves_its_metrics_on_its_port(monitored):
    f, gateway_port, (rep0, rep1) = monitored
    ports = f.monitoring_ports
    assert ports['gateway'] == gateway_port
    assert ports['counted/rep-0'] == rep0 and ports['counted/rep-1'] == rep1
    assert len(set(ports.values())) == len(ports) == 4   # no clash, one each
    text = httpx.get(f'http://127.0.0.1:{rep0}/', timeout=10)  # every path serves the text, as in Jina
    assert text.status_code == 200 and 'jina_receiving_request_seconds' in text.text


def test_gateway_counts_are_exact(monitored):
    f, gateway_port, _ = monitored
    g = scrape(gateway_port)
    assert value(g, 'jina_successful_requests_total', runtime_name='gateway') == 5
    assert value(g, 'jina_failed_requests_total', runtime_name='gateway') == 2
    assert value(g, 'jina_receiving_request_seconds_count', runtime_name='gateway') == 7
    assert value(g, 'jina_number_of_pending_requests', runtime_name='gateway') == 0
    assert value(g, 'jina_received_request_bytes_count') == 7
    assert value(g, 'jina_sent_response_bytes_count') == 7
    assert value(g, 'jina_received_request_bytes_sum') > 0
    # every request reaches both deployments (the failure happens in the second one)
    assert value(g, 'jina_sending_request_seconds_count', deployment='counted') == 7
    assert value(g, 'jina_sending_request_seconds_count', deployment='checker') == 7
    assert value(g, 'jina_sent_request_bytes_count', deployment='checker') == 7
    assert value(g, 'jina_received_response_bytes_count', deployment='counted') == 7
    serving = {(dict(ls)['deployment'], dict(ls)['replica']): v for (n, ls), v in g.items()
               if n == 'plait_replica_serving'}
    assert serving == {('counted', '0'): 1, ('counted', '1'): 1, ('checker', '0'): 1}


def test_executor_counts_are_exact_and_replicas_told_apart(monitored):
    f, _, (rep0, rep1) = monitored
    replicas = [scrape(rep0), scrape(rep1)]
    assert [labels_of(r, 'jina_successful_requests_total', 'runtime_name') for r in replicas] == \
        [{'counted/rep-0'}, {'counted/rep-1'}]
    # load is balanced over the two replicas: together they saw every request once
    assert sum(value(r, 'jina_successful_requests_total') for r in replicas) == 7
    assert sum(value(r, 'jina_failed_requests_total') for r in replicas) == 0
    assert sum(value(r, 'jina_receiving_request_seconds_count') for r in replicas) == 7
    assert sum(value(r, 'jina_document_processed_total', executor='Counted', executor_endpoint='__default__')
               for r in replicas) == 5 * 3 + 2
    assert sum(value(r, 'jina_process_request_seconds_count', executor='Counted') for r in replicas) == 7
    assert sum(value(r, 'jina_received_request_bytes_count', executor='Counted') for r in replicas) == 7
    # self.monitor and @monitor, once per call, named jina_<name>
    assert sum(value(r, 'jina_tokenize_seconds_count') for r in replicas) == 7
    assert sum(value(r, 'jina_embed_seconds_count') for r in replicas) == 7
    assert all(value(r, 'plait_health_serving') == 1 and value(r, 'plait_restarts') == 0 for r in replicas)

    checker = scrape(f.monitoring_ports['checker/rep-0'])
    assert value(checker, 'jina_successful_requests_total', runtime_name='checker/rep-0') == 5
    assert value(checker, 'jina_failed_requests_total', runtime_name='checker/rep-0') == 2
    assert value(checker, 'jina_process_request_seconds_count', executor_endpoint='/fail') == 2
    assert value(checker, 'jina_process_request_seconds_count', executor_endpoint='__default__') == 5


def test_monitor_is_a_no_op_without_monitoring():
    executor = Counted()
    docs = DocumentArray([Document(text='a')])
    executor.work(docs)
    executor.unused()
    assert docs.texts == ['a!']
    with executor.monitor('anything', 'nothing is recorded'):
        pass


def test_restarted_replica_reports_its_restarts_on_the_same_port(wait):
    port = free_port()
    with Deployment(uses=Counted, monitoring=True, port_monitoring=port, quiet=True) as dep:
        dep.post('/', DocumentArray([Document(text='x')]))
        assert value(scrape(port), 'plait_restarts') == 0
        os.kill(dep.process_of('executor/rep-0').pid, signal.SIGKILL)
        wait(lambda: dep.is_deployment_ready(timeout=1), 30, what='the replica to be restarted', interval=0.2)
        after = scrape(port)
        assert value(after, 'plait_restarts', runtime_name='executor/rep-0') == 1
        assert value(after, 'jina_successful_requests_total') == 0  # a new process counts anew


def test_monitoring_port_in_use_is_a_log_line_and_requests_still_served():
    with socket.socket() as taken:
        taken.bind(('0.0.0.0', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with Deployment(uses=Counted, monitoring=True, port_monitoring=port, quiet=True) as dep:
            assert dep.post('/', DocumentArray([Document(text='x')])).texts == ['x!']
            log = '\n'.join(dep.process_of('executor/rep-0').tail)
    assert f'monitoring: cannot serve metrics on 0.0.0.0:{port}' in log


def test_monitoring_option_errors_name_the_option():
    from plait.errors import BadConfig

    with pytest.raises(BadConfig, match='port_monitoring'):
        Deployment(uses=Counted, monitoring=True, port_monitoring='9091,9092', quiet=True)
    with pytest.raises(BadConfig, match='port_monitoring'):
        Deployment(uses=Counted, monitoring=True, port_monitoring='not-a-port', quiet=True)


def test_flow_yaml_takes_the_options():
    gateway_port = free_port()
    yaml = f"""
jtype: Flow
with:
  monitoring: true
  port_monitoring: {gateway_port}
executors:
  - name: quiet_one
    uses: plait.executor:NoOpExecutor
    monitoring: false
  - name: loud
    uses: plait.executor:NoOpExecutor
"""
    f = Flow.load_config(yaml, quiet=True)
    assert f.monitoring_ports['gateway'] == gateway_port
    assert 'quiet_one/rep-0' not in f.monitoring_ports and 'loud/rep-0' in f.monitoring_ports


def test_off_means_no_metrics_and_no_import():
    with Flow(protocol='http', quiet=True).add(uses=Counted) as f:
        assert f.monitoring_ports == {}
        assert httpx.get(f'http://127.0.0.1:{f.port}/metrics', timeout=10).status_code == 404
    # the executor process: neither library; the gateway: no Prometheus client and no OpenTelemetry
    # SDK or exporter (FastAPI itself imports the OpenTelemetry API for the HTTP faces)
    worker = imported_after('import plait.serve.worker, plait.executor, plait.documents')
    assert worker == []
    gateway = imported_after(
        'import logging, plait.serve.gateway.runtime, plait.serve.gateway.grpc_gateway, plait.serve.gateway.websocket\n'
        'from plait.serve.gateway.http_app import build_app\n'
        'from plait.serve.gateway.config import GatewayConfig\n'
        'from plait.serve.gateway.core import GatewayCore\n'
        'build_app(GatewayCore(GatewayConfig(), logging.getLogger()), GatewayConfig())')
    assert [m for m in gateway if m.startswith(('prometheus_client', 'opentelemetry.sdk', 'opentelemetry.exporter'))] == []


def imported_after(code: str) -> list[str]:
    script = code + '\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry"))))'
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip())


class Batched(Executor):
    @requests
    @dynamic_batching(preferred_batch_size=4, timeout=60000)
    def embed(self, docs: DocumentArray, **kwargs: Any) -> None:
        for d in docs:
            d.tags['batch'] = len(docs)


def test_dynamic_batching_reports_batch_sizes_and_queue_time():
    port = free_port()
    with Deployment(uses=Batched, monitoring=True, port_monitoring=port, quiet=True) as dep:
        async def four_callers() -> list[Any]:
            async with AsyncClient(port=dep.port) as client:
                async def one(i: int) -> Any:
                    return [d async for r in client.post('/', Document(text=str(i))) for d in r]
                return await asyncio.gather(*(one(i) for i in range(4)))

        answers = asyncio.run(four_callers())
        assert [docs[0].tags['batch'] for docs in answers] == [4, 4, 4, 4]  # one call served all four
        samples = scrape(port)
    endpoint = {'executor_endpoint': '__default__', 'executor': 'Batched'}
    assert value(samples, 'plait_batch_size_count', **endpoint) == 1
    assert value(samples, 'plait_batch_size_sum', **endpoint) == 4
    assert value(samples, 'plait_batch_queue_seconds_count', **endpoint) == 4   # each request's wait
    assert value(samples, 'jina_process_request_seconds_count', **endpoint) == 1
    assert value(samples, 'jina_document_processed_total', **endpoint) == 4
    assert value(samples, 'jina_successful_requests_total') == 4
