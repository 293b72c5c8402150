"""The image an exported Flow runs: Python, plait, the user's Executor modules on PYTHONPATH,
and `plait` as the entry point (every container runs `plait executor ...` or `plait gateway ...`).
Written as a build context beside the manifests: a two-stage Dockerfile (a build stage installs
plait and the user's requirements into a virtual environment, the image copies only that), a
`plait-app/` folder (the user's code) and a `wheels/` folder (a wheel of the exporting plait)."""

from __future__ import annotations

import os
import sys
from typing import Optional

from plait.errors import BadConfig
from plait.orchestrate.export.sources import APP_DIR, copy_sources
from plait.orchestrate.export.topology import Topology
from plait.orchestrate.export.wheel import build_plait_wheel, plait_requirements

MARKER = '# Written by `plait export`'
WHEELS_DIR = 'wheels'  # in the build context: wheels pip may install from during the build only
DEPENDENCIES = 'plait-requirements.txt'  # in WHEELS_DIR: what plait needs, installed in a layer of its own

_TEMPLATE = '''{marker}: the image every service of the exported Flow runs.
# Build it from this folder:  docker build -t {image} .
#
# How your code gets in: `plait export` copied the modules that define your Executors into
# {app}/ ({copied}). Everything in {app}/ lands in /app, which is on PYTHONPATH, so
# `--uses module:Class` imports them. If they import other local modules, copy those into
# {app}/ too; list third-party packages they need in {app}/requirements.txt.
# plait itself: {plait_from}
# Wheels in {wheels}/ are offered to pip during the build; none is left in the image, which
# holds one virtual environment (/opt/plait) copied from the build stage.
FROM python:{python}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
# plait's dependencies first: this layer stays cached until they change
COPY {wheels}/{deps} /wheels/{deps}
RUN python3 -m venv /opt/plait \\
 && /opt/plait/bin/pip install -r /wheels/{deps}
COPY {wheels}/ /wheels/
COPY {app}/requirements.txt /wheels/requirements.txt
ARG PLAIT_PACKAGE={package}
RUN /opt/plait/bin/pip install --find-links /wheels "$PLAIT_PACKAGE" -r /wheels/requirements.txt

FROM python:{python}-slim
ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PATH=/opt/plait/bin:$PATH \\
    PYTHONPATH=/app
COPY --from=build /opt/plait /opt/plait
WORKDIR /app
COPY {app}/ /app/

# Kubernetes and docker-compose give the arguments: `executor ...` or `gateway ...`
ENTRYPOINT ["plait"]
CMD ["--help"]
'''

_REQUIREMENTS = '''# Third-party packages your Executors import, one pip requirement per line; the image installs
# them beside plait (`plait export` wrote this file and leaves it alone from now on).
'''

_WHEELS_README = '''Wheels in this folder are offered to pip (--find-links) while the image is built, and are not
kept in the image. `plait export` puts here a wheel of the plait that exported the Flow, unless
it was told where the image gets plait from (--plait-package).
'''

_DOCKERIGNORE = '''{marker}: only these go into the image's build context.
*
!Dockerfile
!{app}
!{wheels}
'''


def dockerfile_text(topology: Topology, package: str, plait_from: str) -> str:
    copied = ', '.join(sorted(topology.sources)) or 'none were needed'
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    return _TEMPLATE.format(marker=MARKER, image=topology.image, app=APP_DIR, wheels=WHEELS_DIR, copied=copied,
                            python=python, package=package, plait_from=plait_from,
                            deps=DEPENDENCIES)


def _write_ours(path: str, text: str) -> None:
    """Write `path`, refusing to overwrite a file that plait did not write."""
    if os.path.exists(path):
        with open(path, encoding='utf-8', errors='replace') as f:
            if not f.read(len(MARKER)) == MARKER:
                raise BadConfig(f'{path} exists and was not written by plait; export to another folder '
                                'or remove it')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def _write_new(path: str, text: str) -> bool:
    """Write `path` unless it exists (the user's own); whether it was written."""
    if os.path.exists(path):
        return False
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return True


def _plait_source(wheels: str, plait_package: Optional[str]) -> tuple[str, str, list[str]]:
    """(what the image pip-installs as plait, a comment saying so, wheel files written)."""
    for name in os.listdir(wheels):  # the wheel an earlier export left
        if name.startswith('plait-') and name.endswith('-py3-none-any.whl'):
            os.remove(os.path.join(wheels, name))
    if plait_package:
        return plait_package, f'{plait_package} (from --plait-package), as pip finds it.', []
    path = build_plait_wheel(wheels)
    name = os.path.basename(path)
    return (f'/wheels/{name}', f'{WHEELS_DIR}/{name}, a wheel of the plait that wrote this file;\n'
            '# another with  docker build --build-arg PLAIT_PACKAGE=plait==VERSION ...', [path])


def write_build_context(folder: str, topology: Topology, plait_package: Optional[str] = None) -> list[str]:
    """Write `folder/Dockerfile`, `.dockerignore`, `plait-app/` (the user's modules and a
    requirements.txt) and `wheels/` (a wheel of this plait, unless `plait_package` names where
    the image gets plait); the paths written. Refuses to overwrite a Dockerfile or .dockerignore
    that plait did not write, and keeps the user's requirements.txt."""
    os.makedirs(folder, exist_ok=True)
    app_dir, wheels = os.path.join(folder, APP_DIR), os.path.join(folder, WHEELS_DIR)
    os.makedirs(app_dir, exist_ok=True)
    os.makedirs(wheels, exist_ok=True)
    package, plait_from, written = _plait_source(wheels, plait_package)
    dependencies = os.path.join(wheels, DEPENDENCIES)
    with open(dependencies, 'w', encoding='utf-8') as f:
        f.write(''.join(f'{line}\n' for line in plait_requirements()))
    dockerfile = os.path.join(folder, 'Dockerfile')
    _write_ours(dockerfile, dockerfile_text(topology, package, plait_from))
    ignore = os.path.join(folder, '.dockerignore')
    _write_ours(ignore, _DOCKERIGNORE.format(marker=MARKER, app=APP_DIR, wheels=WHEELS_DIR))
    readme = os.path.join(wheels, 'README.txt')
    with open(readme, 'w', encoding='utf-8') as f:
        f.write(_WHEELS_README)
    requirements = os.path.join(app_dir, 'requirements.txt')
    extra = [requirements] if _write_new(requirements, _REQUIREMENTS) else []
    return [dockerfile, ignore, *written, dependencies, readme, *extra, *copy_sources(topology.sources, app_dir)]


def installed_notes(topology: Topology) -> list[str]:
    """One line per Executor module the image must install itself."""
    return [f'module {name!r} is installed here ({path}); add its package to {APP_DIR}/requirements.txt '
            'so the image has it' for name, path in sorted(topology.installed.items())]
