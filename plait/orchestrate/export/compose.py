"""A docker-compose file for a Flow: one service per executor replica of each shard and one for
the gateway, each with a healthcheck (`plait ping` inside the container) and a restart policy;
the gateway starts once every executor is healthy and is the only one publishing ports. Every
service runs the one image built from the Dockerfile written beside it. The file is read alike
by Compose v2 (`docker compose`) and v1 (`docker-compose`, as Debian packages it)."""

from __future__ import annotations

import os
from typing import Any, Optional

from plait.orchestrate.export.dockerfile import installed_notes, write_build_context
from plait.orchestrate.export.render import yaml_text
from plait.orchestrate.export.topology import AUTH_TOKEN, EXECUTOR_SECRET, Service, Topology, build_topology

HEALTH_INTERVAL = '5s'
RESTART = 'unless-stopped'  # a crashed container comes back; one an operator stops stays stopped


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


def _published(number: int, publish_host: Optional[str]) -> str:
    if not publish_host:
        return f'{number}:{number}'
    host = f'[{publish_host}]' if ':' in publish_host else publish_host  # an IPv6 address
    return f'{host}:{number}:{number}'


def _service(topology: Topology, service: Service, network_name: Optional[str],
             publish_host: Optional[str]) -> dict[str, Any]:
    # every service names the image and how to build it: Compose v2 builds an image that several
    # services share once; v1 builds it per service, every step after the first from its cache
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
        entry['ports'] = [_published(p.number, publish_host) for p in service.ports]
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
    entry['restart'] = RESTART
    entry['stop_grace_period'] = f'{service.termination_seconds}s'
    if network_name:
        entry['networks'] = [network_name]
    return entry


def compose_document(topology: Topology, network_name: Optional[str] = None,
                     publish_host: Optional[str] = None) -> dict[str, Any]:
    document: dict[str, Any] = {'services': {s.name: _service(topology, s, network_name, publish_host)
                                             for s in topology.services}}
    if network_name:
        document['networks'] = {network_name: {'name': network_name, 'driver': 'bridge'}}
    return document


_HEADER = '''# Written by `plait export docker-compose`. Start it with:  {start}
# (Compose v1:  {start_v1}).
# Every service runs the image built from the Dockerfile beside this file: `plait executor ...` for
# each executor replica, `plait gateway ...` for the gateway. Your Executors' modules were copied
# into plait-app/ ({copied}); copy other local modules they import there too.
# Secrets are read from the environment of `docker compose up` (or an .env file), never written here:
#   export PLAIT_EXECUTOR_SECRET="$(openssl rand -base64 32)"{token_line}
'''


def start_command(output_path: str, v1: bool = False) -> str:
    """How to build the image and start the exported Flow, with Compose v2 or v1."""
    return f'{"docker-compose" if v1 else "docker compose"} -f {output_path} up --build'


def export_docker_compose(flow: Any, output_path: str, network_name: Optional[str] = None,
                          image: Optional[str] = None, publish_host: Optional[str] = None,
                          plait_package: Optional[str] = None) -> list[str]:
    """Write the compose file and its build context (Dockerfile, plait-app/, wheels/) beside it;
    the paths written. `publish_host` is the host address the gateway's ports are published on
    (default: every interface); `plait_package` a pip requirement the image installs plait from
    instead of a wheel of this plait."""
    topology = compose_topology(flow, image)
    folder = os.path.dirname(output_path) or '.'
    written = write_build_context(folder, topology, plait_package)
    token_line = ('\n#   export PLAIT_AUTH_TOKEN=...   (what callers must send)'
                  if AUTH_TOKEN in topology.secrets else '')
    name = os.path.basename(output_path)
    header = _HEADER.format(start=start_command(name), start_v1=start_command(name, v1=True), token_line=token_line,
                            copied=', '.join(sorted(topology.sources)) or 'none were needed')
    header += ''.join(f'# Note: {line}.\n' for line in installed_notes(topology))
    with open(output_path, 'w', encoding='utf-8') as f:
        f.write(header + yaml_text([compose_document(topology, network_name, publish_host)]))
    return [output_path, *written]
