"""K. Client: 1,000,000 documents posted from a generator with `on_done` (the inputs are read
request by request as answers come back, nothing is kept), the client's resident memory
sampled as the responses arrive. Flat memory means the growth after warm-up stays small."""

from __future__ import annotations

import time
from typing import Any, Iterator

from common import Settings, guarded, section_main
from results import Section, Target

REQUEST_SIZE = 100  # the default


def _rss_mb() -> float:
    with open('/proc/self/status', encoding='ascii') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


class _Sampler:
    """on_done: the resident memory after every `every` responses."""

    def __init__(self, every: int):
        self.every = max(1, every)
        self.answered = 0
        self.samples: list[float] = []

    def on_done(self, response: Any) -> None:
        self.answered += 1
        if self.answered % self.every == 0:
            self.samples.append(_rss_mb())


def _peak_growth(client: Any, total: int) -> tuple[float, float, list[float]]:
    """(peak resident memory growth in MB while posting `total` documents from a generator,
    documents per second, the samples)."""
    from plait import Document

    def inputs() -> Iterator[Any]:
        for i in range(total):
            yield Document(text=f'document {i}')

    client.post('/', Document())  # connected, imports done
    before = _rss_mb()
    sampler = _Sampler(max(1, total // REQUEST_SIZE // 20))
    start = time.perf_counter()
    client.post('/', inputs, request_size=REQUEST_SIZE, on_done=sampler.on_done)
    seconds = time.perf_counter() - start
    samples = sampler.samples + [_rss_mb()]
    return max(samples) - before, total / seconds, samples


def _post(section: Section, settings: Settings) -> None:
    from bench_executors import NoOp

    from plait import Client, Deployment

    total = 100_000 if settings.quick else 1_000_000
    growth = section.row(f'peak client memory growth, {total:,} docs from a generator', 'MB', Target('ratio_max', 1.5),
                         note=f'floor: the same with {total // 10:,} documents, same run')
    rate = section.row('documents per second', 'docs/s', note=f'request_size={REQUEST_SIZE}, NoOp executor')
    with Deployment(uses=NoOp, quiet=True) as dep, Client(port=dep.port) as client:
        for _ in range(settings.reps):
            small, _, _ = _peak_growth(client, total // 10)
            large, per_second, samples = _peak_growth(client, total)
            growth.plait.append(large)
            growth.floor.append(small)
            rate.plait.append(per_second)
            section.notes.append(f'RSS samples (MB) every 5% of the {total:,}-document post: '
                                 + ', '.join(f'{s:.0f}' for s in samples))


def new_section() -> Section:
    return Section('client', 'K. Client: lazy inputs, flat memory', notes=[
        ('One `Client` posts documents from a generator function (`inputs=gen`) with `on_done`, to a '
         'one-replica NoOp Deployment over gRPC; `request_size=100` and prefetch 1000 (the defaults). The client '
         'reads the generator only as the window of unanswered requests allows and keeps no response.'),
        ('Flat means the peak does not grow with the number of documents: it is bounded by the window of '
         'unanswered requests (prefetch x request_size documents, encoded), so the floor is the same post '
         'with ten times fewer documents in the same run, and the target is a ratio of at most 1.5.'),
    ])


def measure(section: Section, settings: Settings) -> None:
    guarded(section, 'post', lambda: _post(section, settings))


if __name__ == '__main__':
    section_main(new_section, measure)
