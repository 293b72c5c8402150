"""The image an exported Flow runs: Python, plait, the user's Executor modules on PYTHONPATH,
and `plait` as the entry point (every container runs `plait executor ...` or `plait gateway ...`).
Written as a Dockerfile plus a `plait-app/` folder beside the manifests (the build context)."""

from __future__ import annotations

import os
import sys

from plait import __version__
from plait.errors import BadConfig
from plait.orchestrate.export.sources import APP_DIR, copy_sources
from plait.orchestrate.export.topology import Topology

MARKER = '# Written by `plait export`'

_TEMPLATE = '''{marker}: the image every service of the exported Flow runs.
# Build it from this folder:  docker build -t {image} .
#
# How your code gets in: `plait export` copied the modules that define your Executors into
# {app}/ ({copied}). Everything in {app}/ lands in /app, which is on PYTHONPATH, so
# `--uses module:Class` imports them. If they import other local modules, copy those into
# {app}/ too; list third-party packages they need in {app}/requirements.txt.
# plait itself comes from PLAIT_PACKAGE (a version on the package index by default); wheels
# placed in {app}/wheels/ are preferred, e.g. one built with `pip wheel --no-deps /path/to/plait`.
FROM python:{python}-slim

ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG PLAIT_PACKAGE=plait=={version}
WORKDIR /app
COPY {app}/ /app/
RUN if [ -d wheels ]; then LINKS="--find-links wheels"; else LINKS=""; fi \\
 && pip install $LINKS "$PLAIT_PACKAGE" \\
 && if [ -f requirements.txt ]; then pip install $LINKS -r requirements.txt; fi
ENV PYTHONPATH=/app

# Kubernetes and docker-compose give the arguments: `executor ...` or `gateway ...`
ENTRYPOINT ["plait"]
CMD ["--help"]
'''


def dockerfile_text(topology: Topology) -> str:
    copied = ', '.join(sorted(topology.sources)) or 'none were needed'
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    return _TEMPLATE.format(marker=MARKER, image=topology.image, app=APP_DIR, copied=copied, python=python,
                            version=__version__)


def write_build_context(folder: str, topology: Topology) -> list[str]:
    """Write `folder/Dockerfile` and copy the user's modules into `folder/plait-app/`; the paths
    written. Refuses to overwrite a Dockerfile that plait did not write."""
    path = os.path.join(folder, 'Dockerfile')
    if os.path.exists(path):
        with open(path, encoding='utf-8', errors='replace') as f:
            if not f.read(len(MARKER)) == MARKER:
                raise BadConfig(f'{path} exists and was not written by plait; export to another folder '
                                'or remove it')
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(dockerfile_text(topology))
    app_dir = os.path.join(folder, APP_DIR)
    os.makedirs(app_dir, exist_ok=True)
    return [path, *copy_sources(topology.sources, app_dir)]


def installed_notes(topology: Topology) -> list[str]:
    """One line per Executor module the image must install itself."""
    return [f'module {name!r} is installed here ({path}); add its package to {APP_DIR}/requirements.txt '
            'so the image has it' for name, path in sorted(topology.installed.items())]
