"""Per-executor parameters, as Jina has them: in `parameters={'two__k': 1, 'k': 0}` the key
`two__k` is for executor `two` only, which sees it as `k` (over the shared `k`); the others do
not see it. `parameters={'two': {'k': 1}}` gives executor `two` its own values too. An endpoint
that annotates `parameters` with a pydantic model gets them validated into it (`as_model`)."""

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


def as_model(model: Any, parameters: dict[str, Any], where: str) -> Any:
    """`parameters` validated into the endpoint's pydantic `model` (keys it does not declare,
    such as `__results__`, are left to the model's own rule; pydantic's default ignores them);
    BadRequest naming each field that fails."""
    from pydantic import ValidationError

    from plait.errors import BadRequest

    try:
        return model.model_validate(parameters or {})
    except ValidationError as e:
        problems = '; '.join(f'{".".join(str(p) for p in err["loc"]) or "parameters"}: {err["msg"]}'
                             for err in e.errors())
        raise BadRequest(f'{where}: parameters do not fit {model.__name__}: {problems}') from None
