"""Kubernetes export of a monitored and traced Flow: every pod declares its `monitoring` port
and carries the prometheus.io annotations a standard Prometheus reads, a PodMonitor is written
for the Prometheus Operator, the tracing settings reach every container's command, and the
manifests still pass strict validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from plait import Flow
from plait.serve import worker
from plait.serve.gateway import runtime

K8S_VERSION = kubernetes_validate.latest_version()


def export(flow: Flow, out: Path) -> dict[str, list[dict[str, Any]]]:
    flow.to_kubernetes_yaml(str(out), k8s_namespace='observed')
    return {str(p.relative_to(out)): [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted(out.rglob('*.yml')) if 'plait-app' not in p.parts}


def test_monitored_traced_flow_exports_scrapable_pods(tmp_path):
    flow = (Flow(monitoring=True, tracing=True, traces_exporter_host='otel-collector.monitoring',
                 traces_exporter_port=4317, quiet=True)
            .add(name='encoder', uses='plait.executor:NoOpExecutor', replicas=2)
            .add(name='indexer', uses='plait.executor:NoOpExecutor', monitoring=False))
    files = export(flow, tmp_path / 'k8s')
    deployments = {d['metadata']['name']: d for docs in files.values() for d in docs if d['kind'] == 'Deployment'}
    services = {d['metadata']['name']: d for docs in files.values() for d in docs if d['kind'] == 'Service'}
    for docs in files.values():
        for document in docs:
            if document['kind'] in ('Deployment', 'Service'):
                kubernetes_validate.validate(document, K8S_VERSION, strict=True)

    for name in ('encoder', 'gateway'):
        pod = deployments[name]['spec']['template']
        assert pod['metadata']['annotations']['prometheus.io/scrape'] == 'true'
        assert pod['metadata']['annotations']['prometheus.io/port'] == '9090'
        assert pod['metadata']['annotations']['prometheus.io/path'] == '/metrics'
        (container,) = pod['spec']['containers']
        assert {'name': 'monitoring', 'containerPort': 9090, 'protocol': 'TCP'} in container['ports']
        assert any(p['name'] == 'monitoring' and p['port'] == 9090 for p in services[name]['spec']['ports'])
    indexer_pod = deployments['indexer']['spec']['template']
    assert 'prometheus.io/scrape' not in indexer_pod['metadata']['annotations']   # monitoring=False on it

    # the commands the containers run say the same, and `plait executor` / `plait gateway` accept them
    encoder_args = deployments['encoder']['spec']['template']['spec']['containers'][0]['args']
    config = worker.config_from_args(worker.build_parser().parse_args(encoder_args[1:]))
    assert (config.monitoring, config.port_monitoring, config.tracing) == (True, 9090, True)
    assert (config.traces_exporter_host, config.traces_exporter_port) == ('otel-collector.monitoring', 4317)
    indexer_args = deployments['indexer']['spec']['template']['spec']['containers'][0]['args']
    indexer = worker.config_from_args(worker.build_parser().parse_args(indexer_args[1:]))
    assert (indexer.monitoring, indexer.tracing) == (False, True)   # tracing still comes from the Flow
    gateway_args = deployments['gateway']['spec']['template']['spec']['containers'][0]['args']
    gateway = runtime.config_from_args(runtime.build_parser().parse_args(gateway_args[1:]))
    assert (gateway.monitoring, gateway.port_monitoring, gateway.tracing) == (True, 9090, True)
    assert gateway.traces_exporter_host == 'otel-collector.monitoring'
    assert json.loads(gateway_args[gateway_args.index('--config-json') + 1])['port_monitoring'] == 9090

    (monitor,) = files['monitoring/pod-monitor.yml']
    assert monitor['kind'] == 'PodMonitor' and monitor['metadata']['namespace'] == 'observed'
    assert monitor['spec']['podMetricsEndpoints'] == [{'port': 'monitoring', 'path': '/metrics'}]
    selector = monitor['spec']['selector']['matchLabels']
    for name in ('encoder', 'gateway', 'indexer'):
        assert selector.items() <= deployments[name]['spec']['template']['metadata']['labels'].items()
    readme = (tmp_path / 'k8s' / 'README.md').read_text()
    assert 'prometheus.io/scrape' in readme and 'monitoring/pod-monitor.yml' in readme
    assert '-f monitoring/' not in readme   # the custom resource is applied only with the Operator


def test_unmonitored_flow_exports_no_monitoring(tmp_path):
    files = export(Flow(quiet=True).add(name='encoder', uses='plait.executor:NoOpExecutor'), tmp_path / 'k8s')
    assert 'monitoring/pod-monitor.yml' not in files
    for docs in files.values():
        for document in docs:
            text = json.dumps(document)
            assert 'prometheus.io' not in text and '"monitoring"' not in text
