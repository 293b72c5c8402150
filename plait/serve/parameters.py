"""Per-executor parameters, as Jina has them: in `parameters={'two__k': 1, 'k': 0}` the key
`two__k` is for executor `two` only, which sees it as `k` (over the shared `k`); the others do
not see it. `parameters={'two': {'k': 1}}` gives executor `two` its own values too."""

from __future__ import annotations

from typing import Any

SEPARATOR = '__'


def _target_of(key: str) -> tuple[str, str] | None:
    """(executor, key) for 'executor__key'; None for a key meant for every executor."""
    if SEPARATOR not in key or key.startswith(SEPARATOR) or key.endswith(SEPARATOR):
        return None  # also __results__ and the like
    executor, _, name = key.rpartition(SEPARATOR)
    return executor, name


def for_executor(parameters: dict[str, Any], name: str) -> dict[str, Any]:
    """The parameters executor `name` sees."""
    if not parameters:
        return parameters
    seen = dict(parameters)
    for key, value in parameters.items():
        target = _target_of(key)
        if target is not None:
            del seen[key]
            if target[0] == name:
                seen[target[1]] = value
    own = parameters.get(name)
    if isinstance(own, dict):
        seen.update(own)
    return seen
