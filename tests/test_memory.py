"""Flat memory under steady gRPC load through a Flow: after a warm-up, the gateway's unique
memory (USS: Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) grows by less than
10%. The load mixes unary calls, Call streams and requests for an unknown endpoint (errors).

The default suite runs a short version; the `soak` test runs PLAIT_SOAK_SECONDS (90 by
default): `PLAIT_SOAK_SECONDS=600 python -m pytest -m soak -s tests/test_memory.py`.
Each test prints its measurements (`MEASURE ...` lines, see RELIABILITY.md); run with `-s`."""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import pytest

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.errors import PlaitError

SOAK_SECONDS = float(os.environ.get('PLAIT_SOAK_SECONDS', '90'))
SHORT_SECONDS = 24.0
MAX_GROWTH = 0.10


class Tagger(Executor):
    """Serves `/tag` only: every other endpoint is an error."""

    @requests(on='/tag')
    def tag(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.tags['seen'] = True


def uss_kib(pid: int) -> int:
    """Unique set size of `pid` in KiB: the memory only this process holds."""
    fields: dict[str, int] = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == 'kB':
                fields[parts[0].rstrip(':')] = int(parts[1])
    return fields['Private_Clean'] + fields['Private_Dirty']


def _load(port: int, stop: threading.Event, counts: dict[str, int]) -> None:
    with Client(port=port) as client:
        n = 0
        while not stop.is_set():
            n += 1
            docs = DocumentArray([Document(text=f'{n}-{i}' * 20) for i in range(8)])
            if n % 10 == 0:
                try:
                    client.post('/nope', docs[:1], timeout=30)
                except PlaitError:
                    counts['errors'] += 1
                continue
            out = client.post('/tag', docs[:1], timeout=30)  # unary
            assert out[0].tags['seen']
            out = client.post('/tag', docs, request_size=2, timeout=30)  # a Call stream of 4
            assert len(out) == 8
            counts['requests'] += 5


def run_soak(seconds: float, name: str) -> None:
    warmup = max(8.0, seconds * 0.3)
    with Flow(quiet=True).add(uses=Tagger) as f:
        gateway = f.process_of('gateway').pid
        executor = f.process_of('executor0/rep-0').pid
        stop = threading.Event()
        counts = [{'requests': 0, 'errors': 0} for _ in range(2)]
        threads = [threading.Thread(target=_load, args=(f.port, stop, c), daemon=True) for c in counts]
        start_uss = uss_kib(gateway)
        for t in threads:
            t.start()
        samples: list[tuple[float, int, int]] = []
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                time.sleep(1.0)
                if elapsed >= warmup:
                    samples.append((elapsed, uss_kib(gateway), uss_kib(executor)))
                assert all(t.is_alive() for t in threads), 'a load thread failed'
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        requests_done = sum(c['requests'] for c in counts)
        errors = sum(c['errors'] for c in counts)
    window = max(3, len(samples) // 5)
    base = statistics.median(s[1] for s in samples[:window])
    end = statistics.median(s[1] for s in samples[-window:])
    growth = (end - base) / base
    ex_base = statistics.median(s[2] for s in samples[:window])
    ex_end = statistics.median(s[2] for s in samples[-window:])
    print(f'MEASURE memory.{name}: seconds={seconds:.0f} warmup_s={warmup:.0f} requests={requests_done} '
          f'error_requests={errors} rate_per_s={requests_done / seconds:.0f} gateway_uss_start_mib='
          f'{start_uss / 1024:.1f} gateway_uss_after_warmup_mib={base / 1024:.1f} gateway_uss_end_mib='
          f'{end / 1024:.1f} gateway_growth_pct={growth * 100:.2f} gateway_uss_max_mib='
          f'{max(s[1] for s in samples) / 1024:.1f} executor_uss_after_warmup_mib={ex_base / 1024:.1f} '
          f'executor_uss_end_mib={ex_end / 1024:.1f}', flush=True)
    assert len(samples) >= 6
    assert requests_done > 0 and errors > 0
    assert growth < MAX_GROWTH, f'gateway USS grew {growth:.1%} after warm-up: {samples}'


def test_gateway_memory_is_flat_under_steady_load_short() -> None:
    run_soak(SHORT_SECONDS, 'short')


def _soak_requested(config: pytest.Config) -> bool:
    expr = (config.getoption('markexpr') or '').replace(' ', '')
    return 'PLAIT_SOAK_SECONDS' in os.environ or (expr.startswith('soak') or 'orsoak' in expr or 'andsoak' in expr)


@pytest.mark.soak
@pytest.mark.timeout(int(SOAK_SECONDS) + 180)
def test_gateway_memory_is_flat_under_steady_load_soak(request: pytest.FixtureRequest) -> None:
    if not _soak_requested(request.config):
        pytest.skip('long soak: run with -m soak or PLAIT_SOAK_SECONDS=<seconds>')
    run_soak(SOAK_SECONDS, 'soak')
