"""Kubernetes manifests for a Flow: per executor shard, and for the gateway, a Deployment and a
Service, with native gRPC probes (HTTP ones for an HTTP-only gateway), a preStop pause and a
termination grace period covering the drain, resource requests, and labels that match.

Layout: OUTDIR/<deployment>/<service>.yml (one file per executor shard), OUTDIR/gateway/gateway.yml,
OUTDIR/Dockerfile with OUTDIR/plait-app/ (the image), OUTDIR/README.md."""

from __future__ import annotations

import math
import os
from typing import Any, Optional

from plait.orchestrate.export.dockerfile import installed_notes, write_build_context
from plait.orchestrate.export.render import yaml_text
from plait.orchestrate.export.sources import APP_DIR
from plait.orchestrate.export.topology import (AUTH_TOKEN, EXECUTOR_SECRET, MONITORING_PORT, PRESTOP_SECONDS,
                                              SECRET_KEYS, Health, Port, Service, Topology, build_topology,
                                              dns_label)

# Requests only (no limits, which would throttle or OOM-kill): an idle plait process holds ~70 MB;
# raise the executors' memory to what your models need.
EXECUTOR_RESOURCES = {'requests': {'cpu': '250m', 'memory': '256Mi'}}
GATEWAY_RESOURCES = {'requests': {'cpu': '250m', 'memory': '128Mi'}}
STARTUP_PERIOD = 2  # seconds between startup probes
# Inert without a service mesh; with linkerd, spreads the gateway's gRPC calls over all the
# replicas behind a Service (plain kube-proxy balances connections, not requests).
POD_ANNOTATIONS = {'linkerd.io/inject': 'enabled'}
TOKEN_DIR = '/var/run/secrets/plait'  # where the gateway's token Secret is mounted (updates reach it)


def _labels(topology: Topology, service: Service) -> dict[str, str]:
    return {'app': service.name, 'app.kubernetes.io/name': service.name,
            'app.kubernetes.io/component': service.role, 'app.kubernetes.io/part-of': topology.flow_name,
            'app.kubernetes.io/managed-by': 'plait'}


def _metadata(name: str, namespace: Optional[str], labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {'name': name}
    if namespace:
        meta['namespace'] = namespace
    meta['labels'] = labels
    return meta


def _check(health: Health, target: str) -> dict[str, Any]:
    """The action of one probe: gRPC health, HTTP GET, or `plait ping` for gRPC over TLS (kubelet's
    gRPC probe speaks plaintext only; the ping verifies the certificate with --tls-ca, so a
    certificate not valid for 127.0.0.1 needs these probes edited)."""
    if health.scheme == 'grpc' and health.tls:
        command = health.ping_command()
        if target != health.ready:
            command[2] = 'gateway'
        return {'exec': {'command': command}}
    if health.scheme == 'grpc':
        return {'grpc': {'port': health.port, 'service': target}}
    return {'httpGet': {'path': target, 'port': health.port, 'scheme': 'HTTPS' if health.tls else 'HTTP'}}


def _probes(service: Service) -> dict[str, Any]:
    health = service.health
    live, ready = _check(health, health.live), _check(health, health.ready)
    quick = 5 if 'exec' in live else 3  # `plait ping` needs a moment to start
    return {
        'startupProbe': {**live, 'periodSeconds': STARTUP_PERIOD, 'timeoutSeconds': quick,
                         'failureThreshold': max(1, math.ceil(service.startup_seconds / STARTUP_PERIOD))},
        'readinessProbe': {**ready, 'periodSeconds': 5, 'timeoutSeconds': quick, 'failureThreshold': 2},
        'livenessProbe': {**live, 'periodSeconds': 10, 'timeoutSeconds': 5, 'failureThreshold': 3},
    }


def _all_ports(service: Service) -> list[Port]:
    """The service's ports, and `monitoring` (Prometheus metrics) when monitoring is on."""
    monitoring = [Port('monitoring', service.monitoring_port)] if service.monitoring_port else []
    return list(service.ports) + monitoring


def _pod_annotations(service: Service) -> dict[str, str]:
    """linkerd, and with monitoring the annotations a standard Prometheus scrape config reads."""
    annotations = dict(POD_ANNOTATIONS)
    if service.monitoring_port:
        annotations.update({'prometheus.io/scrape': 'true', 'prometheus.io/port': str(service.monitoring_port),
                            'prometheus.io/path': '/metrics'})
    return annotations


def pod_monitor(topology: Topology, namespace: Optional[str]) -> Optional[dict[str, Any]]:
    """A Prometheus Operator PodMonitor scraping the `monitoring` port of every monitored pod."""
    if not any(s.monitoring_port for s in topology.services):
        return None
    monitor: dict[str, Any] = {
        'apiVersion': 'monitoring.coreos.com/v1', 'kind': 'PodMonitor',
        'metadata': _metadata(f'{topology.flow_name}-metrics', namespace,
                              {'app.kubernetes.io/part-of': topology.flow_name}),
        'spec': {'selector': {'matchLabels': {'app.kubernetes.io/part-of': topology.flow_name,
                                              'app.kubernetes.io/managed-by': 'plait'}},
                 'podMetricsEndpoints': [{'port': 'monitoring', 'path': '/metrics'}]},
    }
    if namespace:
        monitor['spec']['namespaceSelector'] = {'matchNames': [namespace]}
    return monitor


def _secret_env(topology: Topology, service: Service) -> list[dict[str, Any]]:
    """Secrets reach a container by reference: the executors' secret as a variable, the token as
    a mounted file (so a rotated Secret reaches the gateway without a restart)."""
    from plait.auth import EXECUTOR_SECRET_ENV, TOKEN_FILE_ENV

    env: list[dict[str, Any]] = []
    if EXECUTOR_SECRET in service.secrets:
        env.append({'name': EXECUTOR_SECRET_ENV, 'valueFrom': {'secretKeyRef': {
            'name': topology.secret_name(EXECUTOR_SECRET), 'key': SECRET_KEYS[EXECUTOR_SECRET]}}})
    if AUTH_TOKEN in service.secrets:
        env.append({'name': TOKEN_FILE_ENV, 'value': f'{TOKEN_DIR}/{SECRET_KEYS[AUTH_TOKEN]}'})
    return env


def _secret_volumes(topology: Topology, service: Service) -> dict[str, Any]:
    if AUTH_TOKEN not in service.secrets:
        return {}
    return {'volumes': [{'name': AUTH_TOKEN, 'secret': {'secretName': topology.secret_name(AUTH_TOKEN)}}]}


def deployment_manifest(topology: Topology, service: Service, namespace: Optional[str]) -> dict[str, Any]:
    labels = _labels(topology, service)
    container: dict[str, Any] = {
        'name': service.role,
        'image': topology.image,
        'imagePullPolicy': 'IfNotPresent',
        'command': ['plait'],
        'args': list(service.args),
        'ports': [{'name': p.name, 'containerPort': p.number, 'protocol': 'TCP'} for p in _all_ports(service)],
    }
    env = [{'name': k, 'value': v} for k, v in sorted(service.env.items())] + _secret_env(topology, service)
    if env:
        container['env'] = env
    if AUTH_TOKEN in service.secrets:
        container['volumeMounts'] = [{'name': AUTH_TOKEN, 'mountPath': TOKEN_DIR, 'readOnly': True}]
    container['resources'] = EXECUTOR_RESOURCES if service.role == 'executor' else GATEWAY_RESOURCES
    container.update(_probes(service))
    # keep serving while the pod leaves the Service's endpoints, then drain on SIGTERM
    container['lifecycle'] = {'preStop': {'exec': {'command': ['sleep', str(PRESTOP_SECONDS)]}}}
    return {
        'apiVersion': 'apps/v1',
        'kind': 'Deployment',
        'metadata': _metadata(service.name, namespace, labels),
        'spec': {
            'replicas': service.replicas,
            'selector': {'matchLabels': {'app': service.name}},
            'strategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxSurge': 1, 'maxUnavailable': 0}},
            'template': {
                'metadata': {'labels': labels, 'annotations': _pod_annotations(service)},
                'spec': {'terminationGracePeriodSeconds': service.termination_seconds,
                         'containers': [container], **_secret_volumes(topology, service)},
            },
        },
    }


def service_manifest(topology: Topology, service: Service, namespace: Optional[str]) -> dict[str, Any]:
    return {
        'apiVersion': 'v1',
        'kind': 'Service',
        'metadata': _metadata(service.name, namespace, _labels(topology, service)),
        'spec': {
            'type': 'ClusterIP',
            'selector': {'app': service.name},
            'ports': [{'name': p.name, 'port': p.number, 'targetPort': p.number, 'protocol': 'TCP'}
                      for p in _all_ports(service)],
        },
    }


def kubernetes_topology(flow: Any, k8s_namespace: Optional[str] = None,
                        image: Optional[str] = None) -> Topology:
    """The Flow as Kubernetes Services: short names in one namespace, or `name.ns.svc` when given one."""
    suffix = f'.{k8s_namespace}.svc' if k8s_namespace else ''
    return build_topology(flow, 'kubernetes', lambda name, port: f'{name}{suffix}:{port}', image)


def manifests(topology: Topology, k8s_namespace: Optional[str] = None) -> dict[str, list[dict[str, Any]]]:
    """{relative file path: [Deployment, Service]} for every service of the topology."""
    files: dict[str, list[dict[str, Any]]] = {}
    for service in topology.services:
        folder = 'gateway' if service.role == 'gateway' else dns_label(service.deployment, limit=40)
        files[os.path.join(folder, f'{service.name}.yml')] = [
            deployment_manifest(topology, service, k8s_namespace),
            service_manifest(topology, service, k8s_namespace)]
    return files


_HEADER = '''# Written by `plait export kubernetes`: {what}.
# Runs image {image}; build it from the Dockerfile in the export folder (see README.md there).
'''

_README = '''# {flow} on Kubernetes

Written by `plait export kubernetes`.

| folder | what |
|---|---|
{table}
| Dockerfile, {app}/ | the image every container runs (`plait executor ...` / `plait gateway ...`) |

{secrets_step}1. Build the image and make it pullable by the cluster (push it, or load it into kind/minikube):

       docker build -t {image} .

   Your Executors' modules were copied into `{app}/` ({copied}) and are importable in the image
   from /app. Add other local modules they import to `{app}/`, and third-party packages to
   `{app}/requirements.txt`.{notes}
2. {namespace_step}Apply the manifests:

       kubectl apply {apply}

3. Wait until the gateway is ready (its readiness probe asks the gateway's `readiness` health
   service, SERVING once every executor replica is), then reach it, e.g.:

       kubectl {ns_flag}port-forward svc/gateway {port}:{port}

Resource requests are a baseline (an idle plait process holds about 70 MB): raise the
executors' `resources.requests.memory` to what your models need.

Each executor shard is a Deployment with `replicas` pods behind one Service. Kubernetes
Services balance connections, not gRPC requests: install a service mesh such as linkerd (the
pods carry `linkerd.io/inject: enabled`) to spread the gateway's calls over every replica.
{monitoring}'''

_MONITORING = '''
Monitoring: every pod serves Prometheus metrics on its `monitoring` port ({port}), announced by
the `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path` annotations that a
standard Prometheus scrape configuration reads. With the Prometheus Operator, apply
`monitoring/pod-monitor.yml` (a PodMonitor selecting these pods) as well.
'''


_SECRETS = {
    EXECUTOR_SECRET: ('the secret the gateway and its executors share (executors refuse other callers)',
                      '--from-literal={key}="$(openssl rand -base64 32)"'),
    AUTH_TOKEN: ('the token callers must send (`authorization: Bearer <token>`; one per line to accept '
                 'several while rotating)', '--from-file={key}=./token.txt'),
}


def _secrets_step(topology: Topology, ns_flag: str) -> str:
    """README step 0: create the Secrets the manifests reference (the export holds no secret)."""
    lines = ['0. Create the Secrets the manifests reference (the export holds no secret value):\n']
    for kind in topology.secrets:
        what, source = _SECRETS[kind]
        lines.append(f'   - `{topology.secret_name(kind)}`: {what}:\n\n'
                     f'         kubectl {ns_flag}create secret generic {topology.secret_name(kind)} '
                     f'{source.format(key=SECRET_KEYS[kind])}\n')
    return '\n'.join(lines) + '\n' if topology.secrets else ''


def _readme(topology: Topology, files: list[str], k8s_namespace: Optional[str]) -> str:
    folders = sorted({os.path.dirname(f) for f in files})
    table = '\n'.join(f'| {folder}/ | {"the gateway" if folder == "gateway" else "executor " + folder} |'
                      for folder in folders)
    notes = ''.join(f'\n   Note: {line}.' for line in installed_notes(topology))
    ns_flag = f'-n {k8s_namespace} ' if k8s_namespace else ''
    return _README.format(
        secrets_step=_secrets_step(topology, ns_flag),
        flow=topology.flow_name, table=table, app=APP_DIR, image=topology.image,
        copied=', '.join(sorted(topology.sources)) or 'none were needed', notes=notes,
        namespace_step=(f'Create the namespace: `kubectl create namespace {k8s_namespace}`. '
                        if k8s_namespace else ''),
        apply=' '.join(f'-f {folder}/' for folder in folders), ns_flag=ns_flag,
        port=topology.gateway.ports[0].number,
        monitoring=_MONITORING.format(port=MONITORING_PORT) if pod_monitor(topology, None) else '')


def export_kubernetes(flow: Any, output_base_path: str, k8s_namespace: Optional[str] = None,
                      image: Optional[str] = None, plait_package: Optional[str] = None) -> list[str]:
    """Write the Flow's manifests, the image's build context (see dockerfile.py) and README under
    `output_base_path`; the paths written."""
    if k8s_namespace is not None and dns_label(k8s_namespace) != k8s_namespace:
        from plait.errors import BadConfig
        raise BadConfig(f'k8s_namespace={k8s_namespace!r} is not a valid namespace name '
                        '(lowercase letters, digits and "-", starting with a letter)')
    topology = kubernetes_topology(flow, k8s_namespace, image)
    files = manifests(topology, k8s_namespace)
    written = []
    for relative, documents in files.items():
        path = os.path.join(output_base_path, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        name = documents[0]['metadata']['name']
        what = 'the gateway' if name == 'gateway' else f'executor service {name}'
        with open(path, 'w', encoding='utf-8') as f:
            f.write(_HEADER.format(what=what, image=topology.image) + yaml_text(documents))
        written.append(path)
    monitor = pod_monitor(topology, k8s_namespace)
    if monitor is not None:  # a custom resource: applied only where the Prometheus Operator runs
        path = os.path.join(output_base_path, 'monitoring', 'pod-monitor.yml')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write('# Written by `plait export kubernetes`: a PodMonitor for the Prometheus Operator.\n'
                    + yaml_text([monitor]))
        written.append(path)
    written += write_build_context(output_base_path, topology, plait_package)
    readme = os.path.join(output_base_path, 'README.md')
    with open(readme, 'w', encoding='utf-8') as f:
        f.write(_readme(topology, list(files), k8s_namespace))
    written.append(readme)
    return written
