"""Which code an exported container must load, and where it comes from: each Executor as a
'module:Class' reference, and the user's modules to copy into the image (those not installed
in site-packages and not part of plait itself)."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from typing import Any, Optional

from plait.errors import BadConfig

APP_DIR = 'plait-app'  # in the build context: copied to /app in the image, which is on PYTHONPATH


@dataclass(frozen=True)
class ExportedUses:
    """What `plait executor` is told to build, in a form a fresh container can load."""

    uses: str                      # 'module:Class'
    uses_with: dict[str, Any]
    metas: dict[str, Any]
    requests: Optional[dict[str, str]]
    dynamic_batching: Optional[dict[str, Any]] = None


def exportable_uses(deployment: Any) -> ExportedUses:
    """The deployment's Executor as 'module:Class' with its arguments, or a BadConfig saying
    why it cannot be loaded in a container (defined in __main__ or inside a function)."""
    spec = deployment.spec
    cls = spec.cls
    module, qualname = cls.__module__, cls.__qualname__
    if module == '__main__' or '<locals>' in qualname:
        where = 'in the script being run (__main__)' if module == '__main__' else 'inside a function'
        raise BadConfig(
            f'{deployment.name}: Executor {qualname} is defined {where}, so a container cannot import it. '
            f"Move it into a module (e.g. my_executors.py) and use uses='my_executors:{cls.__name__}' "
            'or a Flow YAML with `py_modules: [my_executors.py]`.')
    from plait.serve.batching import merge_options

    batching = merge_options(spec.dynamic_batching or {}, deployment.uses_dynamic_batching)
    return ExportedUses(f'{module}:{qualname}', dict(spec.uses_with), dict(spec.metas),
                        deployment.uses_requests or spec.requests, batching or None)


def _module_path(module_name: str) -> Optional[str]:
    """The file, or package folder, of a loaded top-level module."""
    module = sys.modules.get(module_name)
    path = getattr(module, '__file__', None)
    if not path:
        return None
    path = os.path.abspath(path)
    return os.path.dirname(path) if os.path.basename(path) == '__init__.py' else path


def _installed_roots() -> list[str]:
    import plait

    roots = {os.path.dirname(os.path.abspath(plait.__file__))}
    for key in ('stdlib', 'platstdlib', 'purelib', 'platlib'):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.abspath(path))
    roots.update(os.path.abspath(p) for p in sys.path if p.endswith(('site-packages', 'dist-packages')))
    return sorted(roots)


def _is_under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def collect_sources(flow: Any) -> tuple[dict[str, str], dict[str, str]]:
    """({module: path to copy into the image}, {module: where it is installed here}) for the
    top-level modules of every Executor class of `flow` (plait's own are neither)."""
    import plait

    plait_dir = os.path.dirname(os.path.abspath(plait.__file__))
    roots = _installed_roots()
    sources: dict[str, str] = {}
    installed: dict[str, str] = {}
    for deployment in flow.deployments.values():
        top = exportable_uses(deployment).uses.partition(':')[0].split('.')[0]
        path = _module_path(top)
        if path is None or _is_under(path, [plait_dir]):
            continue
        if _is_under(path, roots):
            installed[top] = path
        else:
            sources[top] = path
    return sources, installed


def copy_sources(sources: dict[str, str], app_dir: str) -> list[str]:
    """Copy each module file or package folder into `app_dir`; the paths written."""
    os.makedirs(app_dir, exist_ok=True)
    written = []
    for path in sources.values():
        target = os.path.join(app_dir, os.path.basename(path))
        if os.path.isdir(path):
            shutil.copytree(path, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(path, target)
        written.append(target)
    return written
