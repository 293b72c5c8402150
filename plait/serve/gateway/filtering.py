"""`when=` conditions: a deployment only receives the documents that match its condition
(docarray's query language, e.g. `{'tags__key': {'$eq': 'value'}}`). Conditions are read
straight from the protobuf documents, so only deployments with a `when` look inside them.
As in Jina, documents that do not match leave that branch (a join downstream still gets
them from its other branches); a deployment none of whose documents match is skipped; and
dry_run ignores conditions, so it still reaches every deployment.

    condition := {path: {op: value, ...}, ...}     every entry must hold
               | {'$and': [condition, ...]} | {'$or': [condition, ...]} | {'$not': condition}
    path      := field names joined by '__' ('tags__key' is doc.tags['key'])
    op        := $eq $neq $ne $lt $lte $gt $gte $in $nin $regex $size $exists
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from plait.proto._docarray import docarray_pb2
from plait.wire.join import DataContentProto, doc_list_of

Predicate = Callable[[Any], bool]
_MISSING = object()


def _node_value(node: Any) -> Any:
    """The Python value of a docarray NodeProto (None when unset, the proto for arrays)."""
    kind = node.WhichOneof('content')
    if kind is None:
        return None
    value = getattr(node, kind)
    if kind in ('dict', 'doc'):
        return {k: _node_value(v) for k, v in value.data.items()}
    if kind in ('list', 'set', 'tuple'):
        return [_node_value(v) for v in value.data]
    if kind == 'doc_array':
        return [{k: _node_value(v) for k, v in d.data.items()} for d in value.docs]
    return value


def _lookup(doc: docarray_pb2.DocProto, path: list[str]) -> Any:
    """The value at `path` in `doc`, or _MISSING when a part does not exist."""
    if path[0] not in doc.data:
        return _MISSING
    value = _node_value(doc.data[path[0]])
    for part in path[1:]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _compare(op: str, expected: Any) -> Callable[[Any], bool]:
    """A test of one looked-up value (never _MISSING, except for $exists)."""
    def ordered(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def check(v: Any) -> bool:
            try:
                return v is not None and bool(test(v))
            except TypeError:  # e.g. comparing a string with a number: no match
                return False
        return check

    if op == '$eq':
        return lambda v: v == expected
    if op in ('$neq', '$ne'):
        return lambda v: v != expected
    if op == '$lt':
        return ordered(lambda v: v < expected)
    if op == '$lte':
        return ordered(lambda v: v <= expected)
    if op == '$gt':
        return ordered(lambda v: v > expected)
    if op == '$gte':
        return ordered(lambda v: v >= expected)
    if op in ('$in', '$nin'):
        if not isinstance(expected, (list, tuple, set)):
            raise ValueError(f'{op} takes a list, got {expected!r}')
        options = list(expected)
        return (lambda v: v in options) if op == '$in' else (lambda v: v not in options)
    if op == '$regex':
        pattern = re.compile(str(expected))
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == '$size':
        return ordered(lambda v: len(v) == expected)
    raise ValueError(f'unknown operator {op!r}; use one of $eq $neq $lt $lte $gt $gte $in $nin '
                     '$regex $size $exists, or $and/$or/$not')


def _field(path: str, spec: Any) -> Predicate:
    parts = path.split('__')
    if not all(parts):
        raise ValueError(f'bad field path {path!r}: fields are joined by "__", e.g. tags__key')
    if not isinstance(spec, dict):
        spec = {'$eq': spec}  # {'text': 'hello'} is short for {'text': {'$eq': 'hello'}}
    if not spec:
        raise ValueError(f'{path}: empty condition; write e.g. {{"{path}": {{"$eq": 1}}}}')
    tests: list[Predicate] = []
    for op, expected in spec.items():
        if op == '$exists':
            if not isinstance(expected, bool):
                raise ValueError('$exists takes true or false')
            tests.append(lambda doc, want=expected: (_lookup(doc, parts) is not _MISSING) == want)
        elif op == '$not':
            inner = _field(path, expected)
            tests.append(lambda doc, inner=inner: not inner(doc))
        else:
            check = _compare(op, expected)
            tests.append(lambda doc, check=check: (v := _lookup(doc, parts)) is not _MISSING and check(v))
    return lambda doc: all(t(doc) for t in tests)


def compile_condition(condition: Any) -> Predicate:
    """A predicate over DocProto for a `when=` condition; ValueError when it is malformed."""
    if isinstance(condition, list):
        parts = [compile_condition(c) for c in condition]
        return lambda doc: all(p(doc) for p in parts)
    if not isinstance(condition, dict) or not condition:
        raise ValueError(f'when={condition!r}: expected a mapping such as {{"tags__key": {{"$eq": 1}}}}')
    tests: list[Predicate] = []
    for key, value in condition.items():
        if key in ('$and', '$or'):
            items = value if isinstance(value, list) else [{k: v} for k, v in (value or {}).items()]
            if not items:
                raise ValueError(f'{key} takes a non-empty list of conditions')
            subs = [compile_condition(c) for c in items]
            combine = all if key == '$and' else any
            tests.append(lambda doc, subs=subs, combine=combine: combine(s(doc) for s in subs))
        elif key == '$not':
            inner = compile_condition(value)
            tests.append(lambda doc, inner=inner: not inner(doc))
        elif key.startswith('$'):
            raise ValueError(f'unknown logical operator {key!r}; use $and, $or or $not')
        else:
            tests.append(_field(key, value))
    return lambda doc: all(t(doc) for t in tests)


def filter_data(data: bytes, predicate: Predicate) -> tuple[bytes, bool]:
    """The DataContentProto `data` keeping only the documents matching `predicate`, and
    whether to send it on: False when `data` had documents and none matched (the
    deployment is skipped; its branch carries no documents further)."""
    docs = doc_list_of(data).docs
    if not docs:
        return data, True
    kept = [d for d in docs if predicate(d)]
    if len(kept) == len(docs):
        return data, True
    out = DataContentProto()
    out.docs.docs.extend(kept)
    if not kept:
        out.docs.SetInParent()
    return out.SerializeToString(), bool(kept)
