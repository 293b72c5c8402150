"""plait: serve Executors as gRPC microservices and compose them into Flows behind one
multi-protocol Gateway, wire-compatible with Jina 3.x.

Names are imported lazily so that light entry points (the `plait ping` probe) stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = '0.1.0'

_EXPORTS = {
    'AsyncClient': 'plait.clients',
    'Client': 'plait.clients',
    'Deployment': 'plait.orchestrate.deployment',
    'Document': 'plait.documents',
    'DocumentArray': 'plait.documents',
    'Executor': 'plait.executor',
    'Flow': 'plait.orchestrate.flow',
    'dynamic_batching': 'plait.executor',
    'monitor': 'plait.executor',
    'requests': 'plait.executor',
}

__all__ = sorted([*_EXPORTS, '__version__'])

if TYPE_CHECKING:  # pragma: no cover
    from plait.clients import AsyncClient, Client
    from plait.documents import Document, DocumentArray
    from plait.executor import Executor, dynamic_batching, monitor, requests
    from plait.orchestrate.deployment import Deployment
    from plait.orchestrate.flow import Flow


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module plait has no attribute {name!r}')
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
