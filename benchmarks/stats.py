"""Statistics and timing for the benchmarks: percentiles, medians, timed calls."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def time_calls(fn: Callable[[], Any], count: int, budget_s: float = math.inf) -> list[float]:
    """Wall time in seconds of each of `count` sequential calls of `fn`; stops early once
    `budget_s` seconds are spent (after at least 100 calls), so a slow path stays bounded."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if start > deadline and len(times) >= 100:
            break
    return times


def ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]
