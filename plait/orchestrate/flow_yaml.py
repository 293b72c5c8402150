"""Flow YAML: `jtype: Flow`, `with:` (Flow and gateway options), `executors:` (one `.add()`
each). Paths in `uses:` and `py_modules:` are relative to the YAML file."""

from __future__ import annotations

import os
from typing import Any

import yaml

from plait.errors import BadConfig
from plait.yaml_config import load_yaml_file, load_yaml_text

_TOP_KEYS = {'jtype', 'with', 'executors', 'version', 'gateway'}


def _load(source: str) -> tuple[Any, str]:
    if '\n' not in source and source.endswith(('.yml', '.yaml')):
        return load_yaml_file(source), os.path.dirname(os.path.abspath(source))
    return load_yaml_text(source), os.getcwd()


def flow_from_yaml(source: str, **overrides: Any) -> Any:
    from plait.orchestrate.flow import Flow
    from plait.uses import resolve_yaml_entry

    doc, base = _load(source)
    if not isinstance(doc, dict) or doc.get('jtype') != 'Flow':
        raise BadConfig(f'{source}: a Flow YAML starts with `jtype: Flow`')
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise BadConfig(f'{source}: unknown top-level key(s) {sorted(unknown)}; expected {sorted(_TOP_KEYS)}')
    options = dict(doc.get('with') or {})
    if 'auth_token' in options and options['auth_token'] is None:  # e.g. ${{ ENV.X }} with X unset
        raise BadConfig(f'{source}: auth_token: empty; set the variable it names, or remove the key '
                        f'to serve without a token')
    options.update(overrides)
    flow = Flow(**options)
    executors = doc.get('executors') or []
    if not isinstance(executors, list):
        raise BadConfig(f'{source}: `executors:` must be a list of executor entries')
    for i, entry in enumerate(executors):
        if not isinstance(entry, dict):
            raise BadConfig(f'{source}: executors[{i}] must be a mapping, got {entry!r}')
        entry = resolve_yaml_entry(entry, base)
        entry.pop('jtype', None)
        flow.add(**entry)
    return flow


def _uses_to_yaml(uses: Any) -> Any:
    if isinstance(uses, type):
        return f'{uses.__module__}:{uses.__qualname__}'
    return uses


def flow_to_yaml(flow: Any) -> str:
    with_args = {k: v for k, v in flow._init_args.items() if v is not None}
    executors = []
    for args in flow._add_args:
        entry = {k: v for k, v in args.items() if v is not None and k != 'timeout_ready'}
        if 'uses' in entry:
            entry['uses'] = _uses_to_yaml(entry['uses'])
        executors.append(entry)
    return yaml.safe_dump({'jtype': 'Flow', 'with': with_args, 'executors': executors}, sort_keys=False)
