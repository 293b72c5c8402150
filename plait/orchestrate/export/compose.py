"""A docker-compose file for a Flow: one service per executor replica of each shard and one for
the gateway, each with a healthcheck (`plait ping` inside the container); the gateway starts
once every executor is healthy. The image is built from the Dockerfile written beside it."""

from __future__ import annotations

import os
from typing import Any, Optional

from plait.orchestrate.export.dockerfile import installed_notes, write_build_context
from plait.orchestrate.export.render import yaml_text
from plait.orchestrate.export.topology import AUTH_TOKEN, EXECUTOR_SECRET, Service, Topology, build_topology

HEALTH_INTERVAL = '5s'


def compose_topology(flow: Any, image: Optional[str] = None) -> Topology:
    """The Flow as compose services, each reachable by its service name."""
    return build_topology(flow, 'compose', lambda name, port: f'{name}:{port}', image)


def _secret_env(service: Service) -> dict[str, str]:
    """Secrets come from the shell (or an .env file) of `docker compose up`, never from this file;
    compose refuses to start when one is unset."""
    from plait.auth import EXECUTOR_SECRET_ENV, TOKEN_ENV

    env = {}
    if EXECUTOR_SECRET in service.secrets:
        env[EXECUTOR_SECRET_ENV] = f'${{{EXECUTOR_SECRET_ENV}:?set {EXECUTOR_SECRET_ENV} to a long random string}}'
    if AUTH_TOKEN in service.secrets:
        env[TOKEN_ENV] = f'${{{TOKEN_ENV}:?set {TOKEN_ENV} to the token callers must send}}'
    return env


def _service(topology: Topology, service: Service, network_name: Optional[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        'image': topology.image,
        'build': {'context': '.', 'dockerfile': 'Dockerfile'},
        'entrypoint': ['plait'],
        'command': list(service.args),
    }
    environment = {**dict(sorted(service.env.items())), **_secret_env(service)}
    if environment:
        entry['environment'] = environment
    if service.role == 'gateway':
        entry['ports'] = [f'{p.number}:{p.number}' for p in service.ports]
    else:
        entry['expose'] = [str(p.number) for p in service.ports]
    entry['healthcheck'] = {
        'test': ['CMD', *service.health.ping_command()],
        'interval': HEALTH_INTERVAL,
        'timeout': '10s',
        'retries': 3,
        'start_period': f'{int(service.startup_seconds)}s',
    }
    if service.needs:
        entry['depends_on'] = {name: {'condition': 'service_healthy'} for name in service.needs}
    entry['stop_grace_period'] = f'{service.termination_seconds}s'
    if network_name:
        entry['networks'] = [network_name]
    return entry


def compose_document(topology: Topology, network_name: Optional[str] = None) -> dict[str, Any]:
    document: dict[str, Any] = {'services': {s.name: _service(topology, s, network_name)
                                             for s in topology.services}}
    if network_name:
        document['networks'] = {network_name: {'name': network_name, 'driver': 'bridge'}}
    return document


_HEADER = '''# Written by `plait export docker-compose`. Start it with:  docker compose -f {file} up --build
# Every service runs the image built from the Dockerfile beside this file: `plait executor ...` for
# each executor replica, `plait gateway ...` for the gateway. Your Executors' modules were copied
# into plait-app/ ({copied}); copy other local modules they import there too.
# Secrets are read from the environment of `docker compose up` (or an .env file), never written here:
#   export PLAIT_EXECUTOR_SECRET="$(openssl rand -base64 32)"{token_line}
'''


def export_docker_compose(flow: Any, output_path: str, network_name: Optional[str] = None,
                          image: Optional[str] = None) -> list[str]:
    """Write the compose file, the Dockerfile and plait-app/ beside it; the paths written."""
    topology = compose_topology(flow, image)
    folder = os.path.dirname(output_path) or '.'
    written = write_build_context(folder, topology)
    token_line = ('\n#   export PLAIT_AUTH_TOKEN=...   (what callers must send)'
                  if AUTH_TOKEN in topology.secrets else '')
    header = _HEADER.format(file=os.path.basename(output_path), token_line=token_line,
                            copied=', '.join(sorted(topology.sources)) or 'none were needed')
    header += ''.join(f'# Note: {line}.\n' for line in installed_notes(topology))
    with open(output_path, 'w', encoding='utf-8') as f:
        f.write(header + yaml_text([compose_document(topology, network_name)]))
    return [output_path, *written]
