"""Hostile input to the HTTP gateway: a table of hundreds of malformed, mistyped, oversized and
deeply nested requests (invalid JSON and UTF-8, lone surrogates, control characters, NaN,
huge numbers, duplicate keys, reserved parameter names, 100,000-deep nesting, 20 MB bodies,
1,000-character endpoints and paths, wrong methods and content types) sent to `/post`, the
CRUD routes, an exposed endpoint and GraphQL, plus hypothesis-generated bodies.

Every answer is a 4xx whose message names the problem (GraphQL: HTTP 200 with `errors` once
the body is JSON, as GraphQL does), none is a 5xx or a reset connection, a valid request
right after succeeds, and the gateway's unique memory (USS) after 4 more rounds of the
barrage is within max(20 MB, 10 %) of its level after 2 warm-up rounds. Why 20 MB: the
rounds carry 20 MB bodies, and one body's worth of memory may stay with the allocator
(pymalloc arenas, glibc free lists) depending on the order of frees; 10 % of a ~55 MB
gateway would be below that noise. A leak of the barrage (~3,300 requests) grows with each
round instead.

Each test prints `MEASURE ...` lines (see RELIABILITY_HTTP.md); run with `-s` to see them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from docarray import BaseDoc, DocList
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import DocumentArray, Executor, Flow, requests

MB = 1 << 20
BIG = 20 * MB
MEMORY_SLACK_BYTES = 20 * MB
MEMORY_SLACK_RATIO = 0.10
WARMUP_ROUNDS = 2  # the allocator settles (the first round also imports and caches)
ROUNDS = 4  # measured rounds after the warm-up
DATA_ROUTES = [('POST', '/post'), ('POST', '/index'), ('POST', '/search'), ('PUT', '/update'),
               ('DELETE', '/delete'), ('POST', '/exposed')]


class TypedDoc(BaseDoc):
    title: str
    n: int = 0


class Hostile(Executor):
    @requests(on=['/', '/index', '/search', '/update', '/delete', '/exposed'])
    def echo(self, docs: DocumentArray, **kwargs) -> None:
        pass

    @requests(on='/dict')
    def results(self, docs: DocumentArray, **kwargs) -> dict:
        return {'n': len(docs)}

    @requests(on='/typed')
    def typed(self, docs: DocList[TypedDoc], **kwargs) -> DocList[TypedDoc]:
        return docs

    @requests(on='/not-json')
    def not_json(self, docs: DocumentArray, **kwargs) -> dict:
        return {'nan': float('nan'), 'inf': float('inf'), 'deep': [{'x': float('-inf')}], 'ok': 1.5}


@pytest.fixture(scope='module')
def flow() -> Iterator[Flow]:
    f = Flow(protocol='http', quiet=True, expose_graphql_endpoint=True).add(uses=Hostile)
    f.expose_endpoint('/exposed')
    with f:
        yield f


# -- measuring -------------------------------------------------------------------------------

def uss_bytes(pid: int) -> int:
    """Unique set size: the memory only this process holds (Private_Clean + Private_Dirty)."""
    total = 0
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            name, _, rest = line.partition(':')
            if name in ('Private_Clean', 'Private_Dirty'):
                total += int(rest.split()[0]) * 1024
    return total


def measure(name: str, **values: Any) -> None:
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)


# no keep-alive: each request has its own connection, so a reset is blamed on the request
# that caused it
HTTP = httpx.Client(timeout=60, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))


@pytest.fixture(scope='module', autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def send(base: str, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = {'content-type': 'application/json', **(headers or {})}
    return HTTP.request(method, base + path, content=body, headers=headers)


def description(answer: httpx.Response) -> str:
    """The message of a refusal: header.status.description, FastAPI's detail, or the text."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text
    if isinstance(body, dict) and isinstance(body.get('header'), dict):
        return str(body['header'].get('status', {}).get('description', ''))
    if isinstance(body, dict) and 'detail' in body:
        return str(body['detail'])
    if isinstance(body, dict) and body.get('errors'):
        return str(body['errors'][0].get('message', ''))
    return answer.text


# -- the table -------------------------------------------------------------------------------

@dataclass
class Case:
    """A body that must be refused with `status`, the message holding every word of `words`."""

    name: str
    body: bytes
    status: int
    words: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    post_only: bool = False  # names the endpoint in the body: only /post reads it


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def nested(depth: int, leaf: bytes = b'1', kind: str = 'object') -> bytes:
    if kind == 'array':
        return b'[' * depth + leaf + b']' * depth
    return b'{"a":' * depth + leaf + b'}' * depth


MALFORMED = ('malformed JSON',)
SHAPE = ('must be a JSON object',)
SURROGATE = ('lone UTF-16 surrogate',)
NOT_UTF8 = ('not UTF-8',)
TOO_DEEP = ('nested too deeply',)


def data_cases() -> list[Case]:
    cases = [Case(f'invalid JSON {raw!r}', raw, 400, MALFORMED) for raw in (
        b'{"data": [', b'{', b'}', b'nope', b'{"a" 1}', b"{'data': []}", b'{"data": [],}', b'[1,]',
        b'{"data": "abc', b'{"data": [{"text": "a"}]}}', b'{"data": tru}', b'{"data": 01}', b'{"data": .5}',
        b'{"data": [] "parameters": {}}', b'\x00', b'{"data": [{"text": "\\x41"}]}', b'{"data": "\\u12"}')]
    cases += [Case(f'empty body {raw!r}', raw, 400, MALFORMED) for raw in (b'', b' ', b'\n\t ')]
    cases += [Case(f'non-object body {raw!r}', raw, 422, SHAPE)
              for raw in (b'[]', b'[1, 2]', b'"x"', b'1', b'-1.5', b'true', b'null', b'[{"data": []}]')]
    wrong_types: list[tuple[Any, str]] = [
        ({'data': 'text'}, 'data'), ({'data': 5}, 'data'), ({'data': True}, 'data'), ({'data': [1]}, 'data[0]'),
        ({'data': [[]]}, 'data[0]'), ({'data': ['x']}, 'data[0]'), ({'data': [None]}, 'data[0]'),
        ({'data': {'docs': 'x'}}, 'data.docs'), ({'data': {'docs': {}}}, 'data.docs'),
        ({'parameters': [1]}, 'parameters'), ({'parameters': 'x'}, 'parameters'), ({'parameters': 3}, 'parameters'),
        ({'header': 'x'}, 'header'), ({'header': [1]}, 'header'), ({'header': {'requestId': 5}}, 'request_id'),
        ({'header': {'request_id': []}}, 'request_id'), ({'targetExecutor': 5}, 'target_executor'),
        ({'target_executor': {}}, 'target_executor'), ({'header': {'targetExecutor': 1}}, 'target_executor'),
        ({'data': [{'embedding': 'abc'}]}, 'data[0].embedding'), ({'data': [{'tensor': {'a': 1}}]}, 'data[0].tensor'),
        ({'data': [{'embedding': [[1], [1, 2]]}]}, 'data[0].embedding'), ({'data': [{'tags': 'x'}]}, 'data[0].tags'),
        ({'data': [{'tags': [1]}]}, 'data[0].tags'), ({'data': [{'text': 'a'}, {'text': {'b': 1}}]}, 'data[1].text'),
        ({'data': [{'tags': nested_value(100)}]}, 'tags'), ({'data': [{'tags': {'a': 10 ** 30}}]}, 'tags'),
    ]
    cases += [Case(f'wrong type {value!r:.60}', j(value), 422, (word,)) for value, word in wrong_types]
    cases += [Case(f'wrong endpoint type {value!r}', j(value), 422, ('exec_endpoint',), post_only=True)
              for value in ({'execEndpoint': 5}, {'exec_endpoint': []}, {'header': {'execEndpoint': {}}})]
    surrogates: list[tuple[bytes, str]] = [
        (b'{"data": [{"text": "\\ud800"}]}', 'data[0].text'), (b'{"data": [{"text": "a\\udfffb"}]}', 'data[0].text'),
        (b'{"data": [{"tags": {"\\udc00": 1}}]}', 'data[0].tags'), (b'{"parameters": {"k": "\\uDBFF"}}', 'parameters.k'),
        (b'{"parameters": {"\\ud834": 1}}', 'parameters'), (b'{"header": {"requestId": "\\udfff"}}', 'header.requestId'),
        (b'{"targetExecutor": "\\ud800x"}', 'targetExecutor'), (b'{"data": [{"text": "\\ude00\\ud83d"}]}', 'data[0].text'),
        (b'{"parameters": {"a": [1, ["\\ud800"]]}}', 'parameters.a[1][0]'),
    ]
    cases += [Case(f'lone surrogate {raw!r}', raw, 400, (*SURROGATE, where)) for raw, where in surrogates]
    cases += [Case('lone surrogate in execEndpoint', b'{"execEndpoint": "/\\ud800"}', 400, (*SURROGATE, 'execEndpoint'),
                   post_only=True)]
    cases += [Case(f'raw control character {c!r}', b'{"data": [{"text": "a' + c + b'b"}]}', 400,
                   ('Invalid control character',)) for c in (b'\x00', b'\x01', b'\x08', b'\x0b', b'\x1f', b'\n', b'\t')]
    cases += [Case(f'invalid UTF-8 {raw!r}', raw, 400, NOT_UTF8) for raw in (
        b'{"data": [{"text": "\xff"}]}', b'{"data": [{"text": "\xe9t\xe9"}]}', b'{"data": [{"text": "\xed\xa0\x80"}]}',
        b'{"data": [{"text": "\xc0\xaf"}]}', b'{"data": [{"text": "\xf4\x90\x80\x80"}]}', '{}'.encode('utf-16'),
        '{"data": []}'.encode('utf-32'), b'\xfe\xff\x00{\x00}')]
    for depth, kind in ((100_000, 'array'), (100_000, 'object'), (5_000, 'array'), (2_000, 'object')):
        cases.append(Case(f'body nested {depth} deep ({kind}s)', nested(depth, kind=kind), 400, TOO_DEEP))
        cases.append(Case(f'data nested {depth} deep ({kind}s)', b'{"data": [{"tags": {"x": '
                          + nested(depth, kind=kind) + b'}}]}', 400, TOO_DEEP))
        cases.append(Case(f'parameters nested {depth} deep ({kind}s)', b'{"parameters": {"x": '
                          + nested(depth, kind=kind) + b'}}', 400, TOO_DEEP))
    for depth in (33, 50, 150, 900):
        cases.append(Case(f'parameters nested {depth} deep', b'{"parameters": ' + nested(depth) + b'}', 422,
                          ('more than 32 levels',)))
    cases += [Case(f'huge integer of {n} digits', b'{"data": [{"tags": {"a": ' + b'9' * n + b'}}]}', 400,
                   ('4300 digits',)) for n in (4301, 10_000, 100_000)]
    cases += [Case(f'number out of double range in parameters {raw!r:.40}', b'{"parameters": {"a": ' + raw + b'}}',
                   422, ('parameters.a', 'range of a double'))
              for raw in (b'9' * 400, b'-' + b'9' * 309, b'1e999', b'-1e400', b'[1, 1e309]')]
    cases += [Case(f'{word} in {where}', body, 400, (word, 'not a JSON number'))
              for word in ('NaN', 'Infinity', '-Infinity')
              for where, body in (('parameters', b'{"parameters": {"a": %s}}' % word.encode()),
                                  ('a document', b'{"data": [{"tags": {"a": %s}}]}' % word.encode()),
                                  ('an embedding', b'{"data": [{"embedding": [1, %s]}]}' % word.encode()))]
    duplicates = (b'{"data": [], "data": 5}', b'{"parameters": {"a": 1, "a": 2}}', b'{"data": [{"text": "a", "text": "b"}]}',
                  b'{"header": {"requestId": "a", "requestId": "b"}}', b'{"data": [{"tags": {"k": 1, "j": 2, "k": 3}}]}')
    cases += [Case(f'duplicate keys {raw!r}', raw, 400, ('appears twice',)) for raw in duplicates]
    content_types = [('application/x-www-form-urlencoded', b'data=1&parameters=2'),
                     ('multipart/form-data; boundary=x', b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'),
                     ('text/plain', b'hello'), ('application/xml', b'<data><text>a</text></data>'),
                     ('application/octet-stream', bytes(range(256))), ('application/json; charset=latin-1', b'{"a": "\xe9"}'),
                     ('application/x-protobuf', b'\x0a\x02\x08\x01')]
    cases += [Case(f'content type {kind}', raw, 400, ('JSON',), headers={'content-type': kind})
              for kind, raw in content_types]
    long_endpoint = '/' + 'e' * 1000
    cases += [Case('unknown endpoint of 1,000 characters', j({'execEndpoint': long_endpoint, 'data': []}), 404,
                   ('not served', "'/dict'"), post_only=True),
              Case('unknown endpoint', j({'execEndpoint': '/nowhere'}), 404, ("'/nowhere'", "'/typed'"), post_only=True),
              Case('endpoint with a NUL', j({'execEndpoint': '/\x00'}), 404, ('not served',), post_only=True),
              Case('typed field of the wrong type', j({'execEndpoint': '/typed', 'data': [{'title': 'x', 'n': 'q'}]}),
                   422, ('data[0].n',), post_only=True),
              Case('typed field missing', j({'execEndpoint': '/typed', 'data': [{'n': 1}]}), 422, ('data[0].title',),
                   post_only=True),
              Case('typed int out of range', j({'execEndpoint': '/typed', 'data': [{'title': 'x', 'n': 10 ** 40}]}),
                   422, ('`n`',), post_only=True),
              Case('invalid target_executor regex', j({'targetExecutor': '(', 'data': []}), 400, ('target_executor',))]
    return cases


def nested_value(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {'a': value}
    return value


def big_cases() -> list[Case]:
    """Six 20 MB bodies, one per data route in a round (see `rounds`)."""
    return [
        Case('20 MB of junk', b'x' * BIG, 400, MALFORMED),
        Case('20 MB string body', b'"' + b'x' * BIG + b'"', 422, SHAPE),
        Case('20 MB array body', b'[' + b'1,' * (BIG // 2) + b'1]', 422, SHAPE),
        Case('20 MB parameter with a wrong data', b'{"parameters": {"a": "' + b'x' * BIG + b'"}, "data": 5}', 422,
             ('data must be',)),
        Case('20 MB with invalid UTF-8 at the end', b'{"data": [{"text": "' + b'x' * BIG + b'\xff"}]}', 400, NOT_UTF8),
        Case('20 MB of unclosed arrays', b'[' * BIG, 400, TOO_DEEP),
    ]


@dataclass
class Path:
    """A request to a path or method no route serves: FastAPI's `{"detail"}`, naming it."""

    name: str
    method: str
    path: str
    status: int
    words: tuple[str, ...]


PATHS = [
    Path('path of 1,000 characters', 'POST', '/' + 'u' * 1000, 404, ('no route', 'uuuu')),
    Path('data route with 1,000 more characters', 'POST', '/post/' + 'p' * 1000, 404, ('no route',)),
    Path('path of 8,000 characters', 'POST', '/' + 'v' * 8000, 404, ('no route',)),
    Path('unknown path', 'POST', '/nope', 404, ("'/nope'", 'POST /post')),
    Path('percent-encoded junk', 'POST', '/%00%ff%c0', 404, ('no route',)),
    Path('GET on /post', 'GET', '/post', 405, ('GET', '/post', 'use POST')),
    Path('PUT on /index', 'PUT', '/index', 405, ('PUT', 'use POST')),
    Path('POST on /update', 'POST', '/update', 405, ('use PUT',)),
    Path('GET on /exposed', 'GET', '/exposed', 405, ('use POST',)),
    Path('PATCH on /delete', 'PATCH', '/delete', 405, ('use DELETE',)),
    Path('POST on /readyz', 'POST', '/readyz', 405, ('use GET',)),
    Path('DELETE on /graphql', 'DELETE', '/graphql', 405, ('DELETE', 'GET', 'POST')),
]


@dataclass
class GraphQLCase:
    """A GraphQL request refused with `status` (200: GraphQL `errors`) naming the problem;
    `http_status`: the status the refusal carries in `extensions`, when it came from the Flow side."""

    name: str
    body: bytes
    status: int
    words: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    http_status: int | None = None


def gql(query: str, variables: Any = None) -> bytes:
    return j({'query': query, 'variables': variables or {}})


def graphql_cases() -> list[GraphQLCase]:
    docs = 'mutation M($d: [DocumentInput!], $p: JSON, $e: String!) { docs(data: $d, parameters: $p, execEndpoint: $e) { id } }'
    return [
        GraphQLCase('junk', b'{', 400, MALFORMED), GraphQLCase('empty', b'', 400, MALFORMED),
        GraphQLCase('not UTF-8', b'{"query": "\xff"}', 400, NOT_UTF8),
        GraphQLCase('nested 100,000 deep', b'{"query": ' + nested(100_000, kind='array') + b'}', 400, TOO_DEEP),
        GraphQLCase('variables nested 100,000 deep', b'{"query": "{ docs { id } }", "variables": '
                    + nested(100_000) + b'}', 400, TOO_DEEP),
        GraphQLCase('lone surrogate in the query', b'{"query": "{ docs(execEndpoint: \\"\\ud800\\") { id } }"}', 400,
                    (*SURROGATE, 'query')),
        GraphQLCase('lone surrogate in variables', b'{"query": "{ docs { id } }", "variables": {"t": "\\udc00"}}', 400,
                    (*SURROGATE, 'variables.t')),
        GraphQLCase('duplicate keys', b'{"query": "{ docs { id } }", "query": "{ x }"}', 400, ('appears twice',)),
        GraphQLCase('NaN', b'{"query": "{ docs { id } }", "variables": {"a": NaN}}', 400, ('NaN',)),
        GraphQLCase('not an object', b'[1]', 400, ('Batching',)),
        GraphQLCase('no query', b'{}', 400, ('No GraphQL query',)),
        GraphQLCase('wrong content type', gql('{ docs { id } }'), 400, ('content type',),
                    headers={'content-type': 'text/plain'}),
        GraphQLCase('query of 2 MB', gql('{ docs { id } } #' + 'x' * (2 * MB)), 413, ('variables',)),
        GraphQLCase('query of 20 MB', b'{"query": "' + b'x' * BIG + b'"}', 413, ('variables',)),
        GraphQLCase('100,000 tokens', gql('{ docs { ' + 'id ' * 100_000 + '} }'), 200, ('20000 tokens',)),
        GraphQLCase('100,000 fields of one document', gql('{ docs { ' + 'a ' * 100_000 + '} }'), 200, ('tokens',)),
        GraphQLCase('50 aliases', gql('{ ' + ' '.join(f'a{i}: docs {{ id }}' for i in range(50)) + ' }'), 200,
                    ('aliases',)),
        GraphQLCase('nested 5,000 deep', gql('{ docs ' + '{ a ' * 5000 + '}' * 5001), 200, ('nested too deeply',)),
        GraphQLCase('syntax error', gql('{ docs { id '), 200, ('Syntax Error',)),
        GraphQLCase('unknown field', gql('{ nope }'), 200, ('nope',)),
        GraphQLCase('wrong argument type', gql('mutation { docs(data: [{embedding: "x"}]) { id } }'), 200, ('Float',)),
        GraphQLCase('unknown endpoint of 1,000 characters', gql(docs, {'e': '/' + 'e' * 1000}), 200, ('not served',),
                    http_status=404),
        GraphQLCase('parameters nested 50 deep', gql(docs, {'e': '/', 'p': nested_value(50)}), 200,
                    ('more than 32 levels',), http_status=422),
        GraphQLCase('parameter out of double range', b'{"query": "mutation { docs(parameters: {a: '
                    + b'9' * 400 + b'}) { id } }"}', 200, ('range of a double',), http_status=422),
        GraphQLCase('document field of the wrong type', gql(docs, {'e': '/', 'd': [{'fields': {'tensor': {'a': 1}}}]}),
                    200, ('data[0].tensor',), http_status=422),
    ]


# -- checking answers ------------------------------------------------------------------------

def problem(answer: httpx.Response, status: int, words: tuple[str, ...]) -> str | None:
    """What is wrong with `answer`, or None when it is the refusal expected."""
    message = description(answer)
    if answer.status_code != status:
        return f'HTTP {answer.status_code} (expected {status}): {message[:300]!r}'
    missing = [w for w in words if w.lower() not in message.lower()]
    if missing:
        return f'the message does not name {missing}: {message[:300]!r}'
    return None


def attempt(base: str, method: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response | str:
    try:
        return send(base, method, path, body, headers)
    except httpx.HTTPError as e:  # a reset or a closed connection: never acceptable
        return f'no answer: {type(e).__name__}: {e}'


def one_round(flow: Flow, round_index: int) -> tuple[list[str], Counter]:
    """Every case of the table on its routes; the failures and a count of the statuses."""
    base = f'http://127.0.0.1:{flow.port}'
    failures: list[str] = []
    statuses: Counter = Counter()

    def check(label: str, outcome: httpx.Response | str, status: int, words: tuple[str, ...],
              http_status: int | None = None) -> None:
        if isinstance(outcome, str):
            failures.append(f'{label}: {outcome}')
            return
        statuses[outcome.status_code] += 1
        wrong = problem(outcome, status, words)
        if wrong is None and http_status is not None:
            extensions = outcome.json()['errors'][0].get('extensions') or {}
            if extensions.get('http_status') != http_status:
                wrong = f'extensions {extensions} (expected http_status {http_status})'
        if wrong:
            failures.append(f'{label}: {wrong}')

    for case in data_cases():
        routes = [('POST', '/post')] if case.post_only else DATA_ROUTES
        for method, path in routes:
            check(f'{method} {path} {case.name}', attempt(base, method, path, case.body, case.headers),
                  case.status, case.words)
    for i, case in enumerate(big_cases()):
        method, path = DATA_ROUTES[(i + round_index) % len(DATA_ROUTES)]
        check(f'{method} {path} {case.name}', attempt(base, method, path, case.body, case.headers),
              case.status, case.words)
    for p in PATHS:
        check(f'{p.method} {p.path[:40]} {p.name}', attempt(base, p.method, p.path, b'{}', {}), p.status, p.words)
    for g in graphql_cases():
        check(f'GraphQL {g.name}', attempt(base, 'POST', '/graphql', g.body, g.headers), g.status, g.words,
              g.http_status)
    return failures, statuses


def assert_serves(flow: Flow) -> None:
    base = f'http://127.0.0.1:{flow.port}'
    answer = send(base, 'POST', '/post', j({'data': [{'text': 'still here'}], 'parameters': {'p': 1}}))
    assert answer.status_code == 200, answer.text
    assert answer.json()['data'][0]['text'] == 'still here'
    for method, path in DATA_ROUTES[1:]:
        assert send(base, method, path, j({'data': [{'text': 'x'}]})).status_code == 200, path
    answer = send(base, 'POST', '/graphql', gql('mutation { docs(data: [{text: "g"}]) { text } }'))
    assert answer.json() == {'data': {'docs': [{'text': 'g'}]}}


# -- the tests -------------------------------------------------------------------------------

def test_every_hostile_request_gets_a_4xx_naming_the_problem_and_memory_returns(flow: Flow) -> None:
    pid = flow.process_of('gateway').pid
    for round_index in range(WARMUP_ROUNDS):  # checked like the others
        start = time.monotonic()
        failures, statuses = one_round(flow, round_index)
        assert not failures, '\n'.join(failures)
        measure('hostile_http.warmup_round', round=round_index, requests=sum(statuses.values()),
                statuses=dict(sorted(statuses.items())), seconds=time.monotonic() - start, uss_mb=uss_bytes(pid) / MB)
    assert_serves(flow)
    baseline = uss_bytes(pid)
    for round_index in range(WARMUP_ROUNDS, WARMUP_ROUNDS + ROUNDS):
        start = time.monotonic()
        failures, statuses = one_round(flow, round_index)
        assert not failures, '\n'.join(failures)
        measure('hostile_http.round', round=round_index, requests=sum(statuses.values()),
                statuses=dict(sorted(statuses.items())), seconds=time.monotonic() - start, uss_mb=uss_bytes(pid) / MB)
    assert_serves(flow)
    after = uss_bytes(pid)
    allowed = max(MEMORY_SLACK_BYTES, int(baseline * MEMORY_SLACK_RATIO))
    measure('hostile_http.memory', rounds=ROUNDS, uss_after_warmup_mb=baseline / MB, uss_after_mb=after / MB,
            growth_mb=(after - baseline) / MB, allowed_mb=allowed / MB)
    assert after - baseline <= allowed, (f'gateway USS grew from {baseline / MB:.1f} MB to {after / MB:.1f} MB '
                                         f'over {ROUNDS} rounds (allowed {allowed / MB:.0f} MB)')


def test_served_on_purpose(flow: Flow) -> None:
    """Odd but valid requests are served: the Content-Type is not checked, a UTF-8 BOM is
    skipped, escaped NUL and surrogate pairs are text, unknown document fields are kept,
    infinite floats in documents come back as null."""
    base = f'http://127.0.0.1:{flow.port}'
    cases = [
        ('text/plain', j({'data': [{'text': 'a'}]}), {'content-type': 'text/plain'}, 'a'),
        ('no content type', j({'data': [{'text': 'b'}]}), {'content-type': ''}, 'b'),
        ('UTF-8 BOM', b'\xef\xbb\xbf' + j({'data': [{'text': 'c'}]}), {}, 'c'),
        ('escaped NUL', b'{"data": [{"text": "n\\u0000l"}]}', {}, 'n\x00l'),
        ('surrogate pair', b'{"data": [{"text": "\\ud83d\\ude00"}]}', {}, '\U0001F600'),
        ('unknown field', j({'data': [{'text': 'd', 'zzz': 1}]}), {}, 'd'),
        ('camelCase and snake_case', j({'data': {'docs': [{'text': 'e'}]}, 'exec_endpoint': '/'}), {}, 'e'),
    ]
    for name, body, headers, text in cases:
        answer = send(base, 'POST', '/post', body, headers)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()['data'][0]['text'] == text, name
    answer = send(base, 'POST', '/post', b'{"data": [{"text": "f", "tags": {"x": 1e999}}]}')
    assert answer.status_code == 200 and answer.json()['data'][0]['tags'] == {'x': None}


def test_a_results_parameter_from_the_client_is_dropped(flow: Flow) -> None:
    """`__results__` is output only. Jina's HTTP client sends `{"__results__": {}}` with every
    request, so it must be served; whatever a client puts there never reaches the answer."""
    base = f'http://127.0.0.1:{flow.port}'
    for value in ({}, 'x', None, [1, 2], {'executor0/rep-0': {'n': 99}, 'forged': {'a': 1}}):
        answer = send(base, 'POST', '/post', j({'execEndpoint': '/dict', 'data': [{'text': 'a'}],
                                                'parameters': {'__results__': value, 'keep': 1}}))
        assert answer.status_code == 200, (value, answer.text)
        assert answer.json()['parameters'] == {'keep': 1, '__results__': {'executor0/rep-0': {'n': 1}}}, value


def test_results_json_cannot_say_come_back_as_null(flow: Flow) -> None:
    """An executor returning NaN or infinities in its dict gets them answered as null (JSON has
    no such numbers), not a 500 for the whole request."""
    answer = send(f'http://127.0.0.1:{flow.port}', 'POST', '/post', j({'execEndpoint': '/not-json'}))
    assert answer.status_code == 200, answer.text
    assert answer.json()['parameters']['__results__']['executor0/rep-0'] == {
        'nan': None, 'inf': None, 'deep': [{'x': None}], 'ok': 1.5}


def test_a_small_body_limit_answers_413_on_every_route() -> None:
    limit = 4096
    f = Flow(protocol='http', quiet=True, max_body_bytes=limit, expose_graphql_endpoint=True).add(uses=Hostile)
    f.expose_endpoint('/exposed')
    with f:
        base = f'http://127.0.0.1:{f.port}'
        routes = [*DATA_ROUTES, ('POST', '/graphql')]
        for method, path in routes:
            for size in (limit + 1, 100_000, BIG):
                head, tail = b'{"data": [{"text": "', b'"}]}'
                body = head + b'x' * (size - len(head) - len(tail)) + tail
                for chunked in (False, True):
                    content: Any = body if not chunked else iter([body[i:i + 65536] for i in range(0, size, 65536)])
                    answer = send(base, method, path, content)
                    wrong = problem(answer, 413, ('max_body_bytes', str(limit)))
                    assert wrong is None, f'{method} {path} {size} bytes chunked={chunked}: {wrong}'
            fits = j({'data': [{'text': 'x' * (limit - 100)}]})
            if path == '/graphql':
                fits = gql('mutation { docs(data: [{text: "%s"}]) { id } }' % ('x' * (limit - 100)))
            assert len(fits) <= limit
            answer = send(base, method, path, fits)
            assert answer.status_code == 200, (path, answer.text[:300])
        measure('hostile_http.body_limit', limit=limit, routes=len(routes), refused_413=len(routes) * 6)


# -- generated input -------------------------------------------------------------------------

ALLOWED = {200, 400, 404, 422}
HYPOTHESIS = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# text with surrogates, control characters and everything else Unicode has
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=20)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.integers(min_value=-10 ** 400, max_value=10 ** 400) \
    | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=20)
FIELDS = ('data', 'parameters', 'header', 'execEndpoint', 'exec_endpoint', 'targetExecutor', 'target_executor')
DOCUMENT = st.dictionaries(st.sampled_from(['text', 'tags', 'id', 'embedding', 'tensor', 'uri', 'x']) | ANY_TEXT,
                           JSON_VALUE, max_size=4)
BODY = st.fixed_dictionaries({}, optional={
    'data': st.lists(DOCUMENT, max_size=3) | JSON_VALUE, 'parameters': st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3)
    | JSON_VALUE, 'header': st.fixed_dictionaries({}, optional={'requestId': JSON_VALUE, 'execEndpoint': JSON_VALUE})
    | JSON_VALUE, 'execEndpoint': st.sampled_from(['/', '/typed', '/dict', '/nowhere']) | JSON_VALUE,
    'targetExecutor': JSON_VALUE}) | st.dictionaries(st.sampled_from(FIELDS) | ANY_TEXT, JSON_VALUE, max_size=4)


def assert_never_5xx(answer: httpx.Response | str, sent: Any) -> None:
    assert not isinstance(answer, str), f'{answer} for {sent!r:.300}'
    assert answer.status_code in ALLOWED, f'HTTP {answer.status_code} for {sent!r:.300}: {answer.text[:300]}'
    if answer.status_code != 200:
        assert description(answer).strip(), f'no message for {sent!r:.300}'


@HYPOTHESIS
@given(raw=st.binary(max_size=300) | st.builds(lambda s: s.encode('utf-8', 'surrogatepass'), ANY_TEXT))
def test_random_bytes_get_an_answer_never_a_5xx(flow: Flow, raw: bytes) -> None:
    assert_never_5xx(attempt(f'http://127.0.0.1:{flow.port}', 'POST', '/post', raw, {}), raw)


@HYPOTHESIS
@given(body=BODY, route=st.sampled_from(DATA_ROUTES), ascii_only=st.booleans())
def test_random_json_requests_get_an_answer_never_a_5xx(flow: Flow, body: Any, route: tuple[str, str],
                                                        ascii_only: bool) -> None:
    raw = json.dumps(body, ensure_ascii=ascii_only).encode('utf-8', 'surrogatepass')
    assert_never_5xx(attempt(f'http://127.0.0.1:{flow.port}', *route, raw, {}), body)


@HYPOTHESIS
@given(variables=st.dictionaries(st.sampled_from(['d', 'p', 'e']), JSON_VALUE, max_size=3))
def test_random_graphql_variables_get_an_answer_never_a_5xx(flow: Flow, variables: dict[str, Any]) -> None:
    query = ('mutation M($d: [DocumentInput!], $p: JSON, $e: String) '
             '{ docs(data: $d, parameters: $p, execEndpoint: $e) { id } }')
    raw = json.dumps({'query': query, 'variables': variables}).encode('utf-8', 'surrogatepass')
    assert_never_5xx(attempt(f'http://127.0.0.1:{flow.port}', 'POST', '/graphql', raw, {}), variables)
