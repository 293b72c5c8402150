"""Reading plait YAML files (`jtype: Flow` / `jtype: Executor`) with clear errors and
`${{ ENV.NAME }}` substitution."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from plait.errors import BadConfig

_ENV_PATTERN = re.compile(r'\$\{\{\s*ENV\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}')


def _substitute_env(text: str) -> str:
    return _ENV_PATTERN.sub(lambda m: os.environ.get(m.group(1), ''), text)


def load_yaml_text(text: str, source: str = '<string>') -> Any:
    try:
        return yaml.safe_load(_substitute_env(text))
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
        problem = getattr(e, 'problem', None) or str(e)
        raise BadConfig(f'{source}: invalid YAML{where}: {problem}') from None


def load_yaml_file(path: str) -> Any:
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise BadConfig(f'cannot read YAML file {path!r}: {e.strerror}') from None
    return load_yaml_text(text, source=path)
