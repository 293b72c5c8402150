"""Resolving `uses=`: an Executor class, 'module:Class', 'module.Class', a registered class
name, or a YAML file (`jtype:` + `with:` + `metas:` + `py_modules:`), into a class and its
constructor arguments; and carrying a class to a fresh process."""

from __future__ import annotations

import base64
import io
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from plait.errors import BadConfig, UsesNotFound


@dataclass
class ExecutorSpec:
    """What a worker process needs to build its Executor."""

    cls: type
    uses_with: dict[str, Any] = field(default_factory=dict)
    metas: dict[str, Any] = field(default_factory=dict)
    requests: Optional[dict[str, str]] = None
    dynamic_batching: Optional[dict[str, Any]] = None  # endpoint or method name -> batching options


_loaded_from_files: set[str] = set()  # module names that py_modules loaded from a path


def _load_py_module(path: str) -> None:
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules and getattr(sys.modules[name], '__file__', None) == os.path.abspath(path):
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsesNotFound(f'py_modules: cannot load {path!r}')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _loaded_from_files.add(name)
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as e:
        del sys.modules[name]
        raise UsesNotFound(f'py_modules: file {path!r} does not exist') from e


def load_py_modules(modules: Any, base: str) -> None:
    """Load `py_modules:` (one path or a list), relative to the folder `base` of its YAML."""
    for module in [modules] if isinstance(modules, str) else (modules or []):
        _load_py_module(os.path.join(base, module))


def resolve_yaml_entry(entry: dict[str, Any], base: str) -> dict[str, Any]:
    """A Deployment's options from a YAML file in folder `base`: its `py_modules` loaded, a
    relative `uses:` YAML path made absolute, and a `uses: module:Class` imported (also from
    a module.py in `base`)."""
    entry = dict(entry)
    load_py_modules(entry.pop('py_modules', None), base)
    uses = entry.get('uses')
    if isinstance(uses, str) and uses.endswith(('.yml', '.yaml')):
        if not os.path.isabs(uses):
            entry['uses'] = os.path.join(base, uses)
    elif isinstance(uses, str):
        _class_from_string(uses, [base])  # 'module:Class' with module.py beside the YAML
    return entry


def _import_user_module(module_name: str, folders: list[str]) -> Any:
    """Import `module_name` as Python would or, failing that, the way `uvicorn mod:app` finds
    `mod`: a `mod.py` (or `mod/` package) in one of `folders`, which the error then names."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        top = module_name.partition('.')[0]
        if e.name not in (top, module_name):  # something the module itself imports is missing
            raise
        for folder in folders:
            if os.path.isfile(os.path.join(folder, f'{top}.py')) or os.path.isfile(
                    os.path.join(folder, top, '__init__.py')):
                sys.path.insert(0, folder)
                try:
                    module = importlib.import_module(module_name)
                finally:
                    sys.path.remove(folder)
                # not importable by name in a fresh process: carry its classes by value
                _loaded_from_files.update(n for n in list(sys.modules) if n == top or n.startswith(f'{top}.'))
                return module
        raise ModuleNotFoundError(f"{e}; looked in {', '.join(folders)} and the Python path", name=e.name) from None


def _class_from_string(uses: str, folders: Optional[list[str]] = None) -> type:
    """The Executor class `uses` names; a module is looked up in `folders` (e.g. the YAML's
    folder) and the current directory when Python's path does not have it."""
    from plait.executor import Executor, registered_executor

    found = registered_executor(uses)
    if found is not None:
        return found
    if ':' in uses:
        module_name, _, qualname = uses.partition(':')
    elif '.' in uses:
        module_name, _, qualname = uses.rpartition('.')
    else:
        raise UsesNotFound(
            f'uses={uses!r}: no Executor class of that name is defined; give a class, '
            f"'module:Class', or a YAML file")
    search = list(dict.fromkeys(os.path.abspath(f) for f in [*(folders or []), os.getcwd()]))
    try:
        obj: Any = _import_user_module(module_name, search)
    except ImportError as e:
        raise UsesNotFound(f'uses={uses!r}: cannot import module {module_name!r} ({e})') from e
    for part in qualname.split('.'):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsesNotFound(f'uses={uses!r}: module {module_name!r} has no {qualname!r}')
    if not (isinstance(obj, type) and issubclass(obj, Executor)):
        raise UsesNotFound(f'uses={uses!r} is {obj!r}, not an Executor subclass')
    return obj


def _spec_from_yaml(path: str) -> ExecutorSpec:
    from plait.yaml_config import load_yaml_file

    doc = load_yaml_file(path)
    if not isinstance(doc, dict) or 'jtype' not in doc:
        raise BadConfig(f'{path}: an Executor YAML needs a top-level `jtype:` naming the class')
    unknown = set(doc) - {'jtype', 'with', 'metas', 'py_modules', 'requests', 'dynamic_batching',
                          'uses_dynamic_batching'}
    if unknown:
        raise BadConfig(f'{path}: unknown key(s) {sorted(unknown)}; expected jtype, with, metas, '
                        'py_modules, requests, dynamic_batching')
    if 'dynamic_batching' in doc and 'uses_dynamic_batching' in doc:
        raise BadConfig(f'{path}: give dynamic_batching or uses_dynamic_batching, not both')
    batching = doc.get('dynamic_batching', doc.get('uses_dynamic_batching'))  # Jina's docs show both
    if batching is not None and not isinstance(batching, dict):
        raise BadConfig(f'{path}: dynamic_batching: expected a mapping of endpoint -> options, got {batching!r}')
    base = os.path.dirname(os.path.abspath(path))
    load_py_modules(doc.get('py_modules') or (doc.get('metas') or {}).get('py_modules'), base)
    cls = _class_from_string(str(doc['jtype']), [base])
    metas = dict(doc.get('metas') or {})
    metas.pop('py_modules', None)
    return ExecutorSpec(cls=cls, uses_with=dict(doc.get('with') or {}), metas=metas,
                        requests=doc.get('requests'), dynamic_batching=batching)


def resolve_uses(uses: Union[None, str, type], uses_with: Optional[dict] = None,
                 uses_metas: Optional[dict] = None) -> ExecutorSpec:
    """Turn a `uses=` value into an ExecutorSpec, or raise a clear UsesNotFound/BadConfig."""
    from plait.executor import Executor, NoOpExecutor

    if uses is None:
        spec = ExecutorSpec(cls=NoOpExecutor)
    elif isinstance(uses, type):
        if not issubclass(uses, Executor):
            raise UsesNotFound(f'uses={uses!r} is not a subclass of plait.Executor')
        spec = ExecutorSpec(cls=uses)
    elif isinstance(uses, str) and uses.endswith(('.yml', '.yaml')):
        if not os.path.exists(uses):
            raise UsesNotFound(f'uses={uses!r}: no such YAML file')
        spec = _spec_from_yaml(uses)
    elif isinstance(uses, str):
        spec = ExecutorSpec(cls=_class_from_string(uses))
    else:
        raise UsesNotFound(f'uses= takes an Executor class, a string or a YAML path, got {uses!r}')
    spec.uses_with.update(uses_with or {})
    spec.metas.update(uses_metas or {})
    return spec


def class_reference(cls: type) -> str:
    """How to name `cls` to a fresh interpreter: 'module:Qualname' when importable there,
    else 'pickle:<base64 cloudpickle>' (classes defined in a user's script or a notebook)."""
    module = getattr(cls, '__module__', '')
    qualname = getattr(cls, '__qualname__', '')
    if module and module != '__main__' and '<locals>' not in qualname:
        mod = sys.modules.get(module)
        origin = getattr(mod, '__file__', None)
        # modules loaded from a file path (py_modules) are not importable by name elsewhere
        if origin and module not in _loaded_from_files and importlib.util.find_spec(module) is not None:
            return f'{module}:{qualname}'
    import cloudpickle

    mod = sys.modules.get(module)
    if mod is not None and module != '__main__' and getattr(mod, '__file__', None):
        cloudpickle.register_pickle_by_value(mod)  # else cloudpickle would pickle it by name
    buffer = io.BytesIO()
    _ClassPickler(buffer).dump(cls)
    return 'pickle:' + base64.b64encode(buffer.getvalue()).decode('ascii')


def doc_list_of(doc_type: type) -> Any:
    """DocList[doc_type], rebuilt in the worker from a pickled annotation."""
    from docarray import DocList

    return DocList[doc_type]


def _class_pickler() -> type:
    import cloudpickle
    from docarray import DocList

    class ClassPickler(cloudpickle.Pickler):
        """cloudpickle, plus DocList[MyDoc] annotations: docarray's parametrised DocList
        cannot be subscripted again on unpickling, so it travels as (DocList, MyDoc)."""

        def reducer_override(self, obj: Any) -> Any:
            origin = typing.get_origin(obj)
            if isinstance(origin, type) and issubclass(origin, DocList) and typing.get_args(obj):
                return doc_list_of, (typing.get_args(obj)[0],)
            return super().reducer_override(obj)

    return ClassPickler


class _ClassPickler:
    """Lazily built ClassPickler (importing cloudpickle and docarray only when needed)."""

    _cls: Optional[type] = None

    def __new__(cls, buffer: io.BytesIO) -> Any:
        if cls._cls is None:
            cls._cls = _class_pickler()
        return cls._cls(buffer)


def load_class_reference(ref: str) -> type:
    """Inverse of class_reference, run in the worker process."""
    if ref.startswith('pickle:'):
        import pickle

        return pickle.loads(base64.b64decode(ref[len('pickle:'):]))
    return _class_from_string(ref)
