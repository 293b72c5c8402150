"""Flat memory of the WebSocket and HTTP gateways under churn and steady load.

- 3,000 WebSocket connections opened and closed one after the other (with and without
  permessage-deflate, binary DataRequestProto or JSON text, closed by end-of-input, by the
  client's close handshake or by dropping the TCP connection), each sending one request and
  reading its answer: none is lost, and the gateway's unique memory (USS) grows by less than
  10 % over its level after a 200-connection warm-up; its open file descriptors come back.
- A steady HTTP load (8 clients posting for 30 s after a warm-up): nothing lost, same
  memory criterion.
- WebSocket connections to random paths do not grow the metrics' label set.

Longer manual runs: PLAIT_WS_CONNECTIONS (default 3000) sets the number of connections,
PLAIT_SOAK_SECONDS runs both loads for that many seconds instead. Each test prints
`MEASURE ...` lines (see RELIABILITY_HTTP.md); run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flow_helpers import wait_until
from plait import DocumentArray, Executor, Flow, requests
from plait.proto import jina_data_pb2
from plait.wire.json_codec import json_doc_list_proto

MB = 1 << 20
GROWTH_LIMIT = 0.10
WARMUP_CONNECTIONS = 200
CONNECTIONS = int(os.environ.get('PLAIT_WS_CONNECTIONS', '3000'))
SOAK_SECONDS = float(os.environ.get('PLAIT_SOAK_SECONDS', '0'))  # > 0: run the loads by time
HTTP_LOAD_SECONDS = SOAK_SECONDS or 30.0
HTTP_WARMUP_SECONDS = 5.0
HTTP_CLIENTS = 8
CLOSES = ('end-of-input', 'close handshake', 'dropped TCP')


class Upper(Executor):
    @requests
    def upper(self, docs: DocumentArray, **kwargs) -> None:
        for d in docs:
            d.text = (d.text or '').upper()


def uss_bytes(pid: int) -> int:
    """Unique set size: the memory only this process holds (Private_Clean + Private_Dirty)."""
    total = 0
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            name, _, rest = line.partition(':')
            if name in ('Private_Clean', 'Private_Dirty'):
                total += int(rest.split()[0]) * 1024
    return total


def open_fds(pid: int) -> int:
    return len(os.listdir(f'/proc/{pid}/fd'))


def measure(name: str, **values: Any) -> None:
    text = ' '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}' for k, v in values.items())
    print(f'MEASURE {name}: {text}', flush=True)


def assert_flat(name: str, baseline: int, after: int) -> None:
    growth = (after - baseline) / baseline
    assert growth < GROWTH_LIMIT, (f'{name}: gateway USS grew {growth:.1%}, from {baseline / MB:.1f} MB '
                                   f'to {after / MB:.1f} MB (limit {GROWTH_LIMIT:.0%})')


@pytest.fixture(scope='module')
def ws_flow() -> Iterator[Flow]:
    with Flow(protocol='websocket', quiet=True, monitoring=True).add(uses=Upper) as f:
        yield f


# -- WebSocket churn -------------------------------------------------------------------------

def binary_request(text: str) -> bytes:
    request = jina_data_pb2.DataRequestProto()
    request.header.request_id = uuid.uuid4().hex
    request.header.exec_endpoint = '/'
    request.data.docs.CopyFrom(json_doc_list_proto([{'text': text}]))
    return request.SerializeToString()


def answered(message: Any, text: str) -> bool:
    """The answer holds the document, upper-cased, and no error."""
    if isinstance(message, bytes):
        response = jina_data_pb2.DataRequestProto.FromString(message)
        docs = response.data.docs.docs
        return response.header.status.code == 0 and len(docs) == 1 and docs[0].data['text'].text == text.upper()
    body = json.loads(message)
    status = body['header'].get('status') or {}
    return status.get('code', 0) == 0 and [d['text'] for d in body['data']] == [text.upper()]


async def one_connection(url: str, index: int) -> str | None:
    """Open, send one request, read the answer, close (in the way `index` picks); None when
    everything worked, else what went wrong."""
    from websockets.asyncio.client import connect

    deflate = index % 2 == 0
    binary = index % 4 < 2
    close = CLOSES[index % 3]
    text = f'doc {index}'
    try:
        async with asyncio.timeout(30):
            ws = await connect(url, compression='deflate' if deflate else None, proxy=None,
                               subprotocols=['bytes' if binary else 'json'], max_size=None)
            try:
                if deflate and not ws.protocol.extensions:
                    return f'connection {index}: permessage-deflate was not negotiated'
                await ws.send(binary_request(text) if binary else json.dumps({'data': [{'text': text}]}))
                if not answered(await ws.recv(), text):
                    return f'connection {index}: wrong answer'
                if close == 'end-of-input':
                    await ws.send(b'\x00' if binary else '{}')
                    await ws.wait_closed()
                    if ws.close_code != 1000:
                        return f'connection {index}: closed with {ws.close_code} after end-of-input'
            finally:
                if close == 'dropped TCP':
                    ws.transport.abort()
                await ws.close()
    except Exception as e:  # noqa: BLE001  (counted as lost, with its reason)
        return f'connection {index} ({close}, deflate={deflate}, binary={binary}): {type(e).__name__}: {e}'
    return None


async def churn(url: str, count: int, seconds: float, start: int = 0) -> tuple[int, list[str]]:
    """Connections one after the other: `count` of them, or as many as fit in `seconds` (> 0)."""
    lost: list[str] = []
    done = 0
    deadline = time.monotonic() + seconds
    while (done < count) if seconds <= 0 else (time.monotonic() < deadline):
        problem = await one_connection(url, start + done)
        if problem:
            lost.append(problem)
        done += 1
    return done, lost


def test_websocket_churn_keeps_memory_flat(ws_flow: Flow) -> None:
    url = f'ws://127.0.0.1:{ws_flow.port}/'
    pid = ws_flow.process_of('gateway').pid
    done, lost = asyncio.run(churn(url, WARMUP_CONNECTIONS, 0))
    assert not lost, lost[:5]
    baseline, fds_before = uss_bytes(pid), open_fds(pid)
    start = time.monotonic()
    done, lost = asyncio.run(churn(url, CONNECTIONS, SOAK_SECONDS, start=WARMUP_CONNECTIONS))
    seconds = time.monotonic() - start
    after = uss_bytes(pid)
    # the server side of dropped connections closes asynchronously
    wait_until(lambda: open_fds(pid) <= fds_before + 2, 5)
    fds_after = open_fds(pid)
    measure('websocket.churn', connections=done, lost=len(lost), seconds=seconds,
            connections_per_s=done / seconds, uss_after_warmup_mb=baseline / MB, uss_after_mb=after / MB,
            growth_pct=100 * (after - baseline) / baseline, fds_before=fds_before, fds_after=fds_after)
    assert not lost, f'{len(lost)} of {done} connections lost: {lost[:5]}'
    assert_flat('websocket churn', baseline, after)
    assert fds_after <= fds_before + 2, f'open descriptors {fds_before} -> {fds_after}'
    assert asyncio.run(one_connection(url, 0)) is None  # and it still serves


def test_websocket_paths_do_not_grow_the_metrics(ws_flow: Flow) -> None:
    """A client trying many paths: each is refused, and /metrics keeps one label per route."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async def knock(count: int) -> Counter:
        outcomes: Counter = Counter()
        for _ in range(count):
            try:
                async with asyncio.timeout(10):
                    async with connect(f'ws://127.0.0.1:{ws_flow.port}/random-{uuid.uuid4().hex}', proxy=None):
                        outcomes['accepted'] += 1
            except InvalidStatus as e:
                outcomes[e.response.status_code] += 1
        return outcomes

    outcomes = asyncio.run(knock(300))
    assert set(outcomes) == {403}, outcomes
    metrics = httpx.get(f'http://127.0.0.1:{ws_flow.port}/metrics', timeout=10).text
    assert 'random-' not in metrics
    measure('websocket.random_paths', connections=300, outcomes=dict(outcomes),
            metrics_bytes=len(metrics))


# -- steady HTTP load ------------------------------------------------------------------------

async def http_load(base: str, seconds: float) -> tuple[int, list[str], list[float]]:
    """HTTP_CLIENTS clients posting one after the other for `seconds`: answers, problems, latencies."""
    deadline = time.monotonic() + seconds
    lost: list[str] = []
    latencies: list[float] = []

    async def client(worker: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
            i = 0
            while time.monotonic() < deadline:
                docs = [{'text': f'w{worker} r{i} d{k}'} for k in range(1 + i % 8)]
                start = time.monotonic()
                try:
                    answer = await http.post('/post', json={'data': docs, 'parameters': {'i': i}})
                    texts = [d['text'] for d in answer.json()['data']]
                    if answer.status_code != 200 or texts != [d['text'].upper() for d in docs]:
                        lost.append(f'HTTP {answer.status_code}: {answer.text[:200]}')
                except Exception as e:  # noqa: BLE001  (counted as lost, with its reason)
                    lost.append(f'{type(e).__name__}: {e}')
                latencies.append(time.monotonic() - start)
                i += 1

    await asyncio.gather(*(client(w) for w in range(HTTP_CLIENTS)))
    return len(latencies), lost, latencies


def test_steady_http_load_keeps_memory_flat() -> None:
    with Flow(protocol='http', quiet=True).add(uses=Upper) as f:
        base = f'http://127.0.0.1:{f.port}'
        pid = f.process_of('gateway').pid
        _, lost, _ = asyncio.run(http_load(base, HTTP_WARMUP_SECONDS))
        assert not lost, lost[:5]
        baseline = uss_bytes(pid)
        sent, lost, latencies = asyncio.run(http_load(base, HTTP_LOAD_SECONDS))
        after = uss_bytes(pid)
        latencies.sort()
        measure('http.steady_load', clients=HTTP_CLIENTS, seconds=HTTP_LOAD_SECONDS, requests=sent, lost=len(lost),
                requests_per_s=sent / HTTP_LOAD_SECONDS, p50_ms=1000 * latencies[len(latencies) // 2],
                p99_ms=1000 * latencies[int(len(latencies) * 0.99)], uss_after_warmup_mb=baseline / MB,
                uss_after_mb=after / MB, growth_pct=100 * (after - baseline) / baseline)
        assert not lost, f'{len(lost)} of {sent} requests lost: {lost[:5]}'
        assert_flat('steady HTTP load', baseline, after)
