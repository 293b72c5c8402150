"""The keyword names Jina documents for Flow(), Flow.add(), Deployment(), Client(),
Client.post() and Executor.serve(), read from the signatures (with their @overload variants)
of an installed Jina without importing it; `--check` compares them with plait/jina_options.py.

    python interop/jina_options.py            # print them
    python interop/jina_options.py --check    # exit 1 when plait's copy differs
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys

# (file under the jina package, class or None for a module function, function) per surface
SOURCES = {
    'FLOW': [('orchestrate/flow/base.py', 'Flow', '__init__')],
    'ADD': [('orchestrate/flow/base.py', 'Flow', 'add')],
    'DEPLOYMENT': [('orchestrate/deployments/__init__.py', 'Deployment', '__init__')],
    'CLIENT': [('clients/__init__.py', None, 'Client')],
    'POST': [('clients/mixin.py', 'PostMixin', 'post')],
    'EXECUTOR_SERVE': [('serve/executors/__init__.py', 'BaseExecutor', 'serve')],
}
# what the generic **kwargs of post() reach in Jina's clients (gRPC call options, HTTP session)
POST_EXTRA = ('metadata', 'credentials', 'timeout', 'headers', 'auth', 'cookies', 'compression')
NOT_OPTIONS = {'self', 'cls', 'args', 'deployment'}


def _names(path: str, cls: str | None, func: str) -> set[str]:
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    bodies = [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls] if cls else [tree.body]
    names: set[str] = set()
    for body in bodies:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
                names.update(a.arg for a in node.args.args + node.args.kwonlyargs)
    return names - NOT_OPTIONS


def jina_options(root: str) -> dict[str, set[str]]:
    found = {}
    for surface, places in SOURCES.items():
        found[surface] = set().union(*(_names(os.path.join(root, p), c, f) for p, c, f in places))
    found['POST'] |= set(POST_EXTRA)
    return found


def main() -> int:
    spec = importlib.util.find_spec('jina')
    if spec is None or spec.origin is None:
        print('jina is not installed in this environment', file=sys.stderr)
        return 2
    found = jina_options(os.path.dirname(spec.origin))
    if '--check' not in sys.argv:
        for surface, names in found.items():
            print(surface, sorted(names))
        return 0
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    spec_plait = importlib.util.spec_from_file_location(
        'plait_jina_options', os.path.join(sys.path[0], 'plait', 'jina_options.py'))
    module = importlib.util.module_from_spec(spec_plait)
    spec_plait.loader.exec_module(module)
    status = 0
    for surface, names in found.items():
        stored = set(getattr(module, surface))
        if stored != names:
            print(f'{surface}: Jina has {sorted(names - stored)} that plait/jina_options.py lacks, '
                  f'and plait lists {sorted(stored - names)} that Jina does not')
            status = 1
    print('plait/jina_options.py matches Jina' if status == 0 else 'plait/jina_options.py is out of date')
    return status


if __name__ == '__main__':
    sys.exit(main())
