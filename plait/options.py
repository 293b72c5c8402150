"""No silent drops: a keyword that plait does not honour is refused at once, by name.

    refuse_unknown('Flow.add(name=two)', kwargs, known=DEPLOYMENT_OPTIONS, jina=JINA_ADD)

A keyword Jina documents for the same call but plait does not implement is refused as
"not supported by plait: X"; any other unknown keyword as "unknown option 'X'", with the
closest known option when one is near ("did you mean timeout_send?"). Imports nothing else
of plait but its errors."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable

from plait.errors import UnknownOption


def describe_unknown(key: str, known: Iterable[str], jina: Iterable[str] = ()) -> str:
    """What to tell the user about keyword `key` that is not in `known`."""
    if key in set(jina):
        return f'not supported by plait: {key}'
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f'unknown option {key!r}' + (f' (did you mean {close[0]}?)' if close else '')


def refuse_unknown(where: str, given: Iterable[str], known: Iterable[str], jina: Iterable[str] = ()) -> None:
    """Raise UnknownOption naming every keyword of `given` that is not in `known`."""
    known = set(known)
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        problems = [describe_unknown(k, known, jina) for k in unknown]
        raise UnknownOption(f'{where}: ' + '; '.join(problems), unknown)


def parameters_of(function: Callable[..., Any]) -> frozenset[str]:
    """The keyword parameters `function` names itself (not self, not **kwargs)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in inspect.signature(function).parameters.values()
                     if p.kind in kinds and p.name != 'self')
