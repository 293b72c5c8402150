"""Configurations that cross process boundaries as data: a dataclass goes to the process it
configures as one JSON document, and comes back refusing any key it does not know. The
dataclass is the single place where an option and its default are written; command-line
flags and option tables are derived from its fields. Imports nothing else of plait."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any, Optional, TypeVar

T = TypeVar('T')


def field_names(cls: type) -> list[str]:
    """The option names a config dataclass declares, in order."""
    return [f.name for f in dataclasses.fields(cls)]


def to_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config))


def from_dict(cls: type[T], raw: dict[str, Any]) -> T:
    """`cls(**raw)`, refusing keys `cls` does not declare (by name) instead of a TypeError."""
    unknown = sorted(set(raw) - set(field_names(cls)))
    if unknown:
        raise ValueError(f'{cls.__name__}: unknown field(s) {unknown}')
    return cls(**raw)


def from_json(cls: type[T], text: str) -> T:
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f'{cls.__name__}: expected a JSON object')
    return from_dict(cls, raw)


def default_of(cls: type, name: str) -> Any:
    """The default a config dataclass gives field `name` (MISSING when it has none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return f.default
    raise KeyError(name)


def json_object_arg(text: Optional[str], flag: str, prog: str) -> Optional[dict[str, Any]]:
    """A command-line flag holding a JSON object (None when not given); a clear exit if not."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f'{prog}: error: {flag}: not valid JSON ({e})') from None
    if not isinstance(value, dict):
        raise SystemExit(f'{prog}: error: {flag}: expected a JSON object')
    return value


def _kind(annotation: Any) -> Any:
    """The plain type of a field annotation: Optional[int] -> int, dict[str, X] -> dict."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _kind(args[0]) if len(args) == 1 else str
    return origin or annotation


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                  required: tuple[str, ...] = ()) -> None:
    """One `--flag-name` per field of `cls` (booleans as switches, dicts as JSON objects, lists
    as several values); help text from each field's `metadata['help']`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = '--' + f.name.replace('_', '-')
        kind = _kind(hints[f.name])
        help_text = f.metadata.get('help')
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action='store_true', default=None, help=help_text)
        elif kind is dict:
            parser.add_argument(flag, dest=f.name, default=None, metavar='JSON', help=help_text)
        elif kind is list:
            parser.add_argument(flag, dest=f.name, nargs='+', default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind if kind in (int, float) else str, default=None,
                                required=f.name in required, help=help_text)


def from_arguments(cls: type[T], args: argparse.Namespace, prog: str, base: Optional[T] = None) -> T:
    """A `cls` from the flags `add_arguments` declared: given flags override `base` (or the
    defaults); JSON-object flags are parsed and refused clearly when malformed."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if _kind(hints[f.name]) is dict:
            value = json_object_arg(value, '--' + f.name.replace('_', '-'), prog)
        values[f.name] = value
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def to_arguments(config: Any, always: tuple[str, ...] = ()) -> list[str]:
    """The flags `add_arguments` declared that reproduce `config`: fields named in `always`,
    and every other field whose value differs from its default."""
    hints = typing.get_type_hints(type(config))
    args: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in always and value == default_of(type(config), f.name):
            continue
        flag = '--' + f.name.replace('_', '-')
        kind = _kind(hints[f.name])
        if kind is bool:
            args += [flag] if value else []
        elif kind is dict:
            args += [flag, json.dumps(value)]
        elif kind is list:
            args += [flag, *map(str, value)]
        elif value is not None:
            args += [flag, f'{value:g}' if isinstance(value, float) else str(value)]
    return args
