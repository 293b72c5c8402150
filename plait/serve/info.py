"""The `_status` information every plait server reports: versions, platform, uptime, and the
PLAIT_* environment (secrets redacted)."""

from __future__ import annotations

import os
import platform
import time
import uuid
from importlib import metadata

_STARTED = time.time()
_SESSION_ID = str(uuid.uuid4())


def _new_session() -> None:
    """A process forked by the fork server is its own session, with its own uptime."""
    global _STARTED, _SESSION_ID
    _STARTED = time.time()
    _SESSION_ID = str(uuid.uuid4())


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_new_session)

# Environment variables plait reads; any other PLAIT_* that is set is reported too.
KNOWN_ENVS = (
    'PLAIT_FORKSERVER', 'PLAIT_GRPC_RECV_BYTES', 'PLAIT_GRPC_SEND_BYTES', 'PLAIT_LOG_LEVEL',
    'PLAIT_LOG_NO_COLOR', 'PLAIT_RANDOM_PORT_MAX', 'PLAIT_RANDOM_PORT_MIN', 'PLAIT_TLS_CA', 'PLAIT_UVLOOP',
)
# set by plait for its own processes: plumbing, not configuration
_INTERNAL_ENVS = ('PLAIT_PARENT_PID', 'PLAIT_READY_FD', 'PLAIT_RESTARTS')
_SECRET_MARKERS = ('TOKEN', 'KEY', 'SECRET', 'PASSWORD', 'PASSWD', 'CREDENTIAL')


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return '(not installed)'


def _proto_backend() -> str:
    try:
        from google.protobuf.internal import api_implementation

        return api_implementation.Type()
    except Exception:  # pragma: no cover - depends on protobuf build
        return 'unknown'


def versions_and_platform() -> dict[str, str]:
    return {
        'plait': _version('plait'),
        'docarray': _version('docarray'),
        'protobuf': _version('protobuf'),
        'proto-backend': _proto_backend(),
        'grpcio': _version('grpcio'),
        'pyyaml': _version('PyYAML'),
        'python': platform.python_version(),
        'platform': platform.system(),
        'platform-release': platform.release(),
        'platform-version': platform.version(),
        'architecture': platform.machine(),
        'processor': platform.processor(),
        'uid': str(uuid.getnode()),
        'session-id': _SESSION_ID,
        'uptime': f'{time.time() - _STARTED:.3f}s',
        'ci-vendor': os.environ.get('CI_VENDOR', '(unset)'),
    }


def _is_secret(name: str) -> bool:
    return any(marker in name.upper() for marker in _SECRET_MARKERS)


def plait_envs() -> dict[str, str]:
    names = (set(KNOWN_ENVS) | {k for k in os.environ if k.startswith('PLAIT_')}) - set(_INTERNAL_ENVS)
    envs = {}
    for name in sorted(names):
        value = os.environ.get(name)
        if value is None:
            envs[name] = '(unset)'
        elif _is_secret(name):
            envs[name] = '(set, redacted)'
        else:
            envs[name] = value
    return envs


def status_info() -> dict[str, dict[str, str]]:
    return {'jina': versions_and_platform(), 'envs': plait_envs()}
