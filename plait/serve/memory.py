"""Giving memory back after large messages. A 50 MB request passes through gRPC's buffers,
Python bytes and protobuf copies; glibc keeps most of what they freed in its heaps, so a
process that served a few large messages stays hundreds of MB above its baseline. After a
large message (and once traffic has calmed for a moment) this calls glibc's malloc_trim(0),
which hands the free pages of every heap back to the OS.

Off the hot path: a small message costs one comparison; nothing happens where glibc is absent."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from typing import Any, Callable, Optional

LARGE_BYTES = 4 * 1024 * 1024   # a message at least this large asks for a trim
DELAY_S = 0.2                   # after the last large message: trim once traffic calmed


def _malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim with
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class Trimmer:
    """`after(size)` for every message a process takes or sends; after a large one, a trim
    runs DELAY_S later (in a worker thread: it may take a few ms on a large heap), once for a
    burst of large messages."""

    def __init__(self, large_bytes: int = LARGE_BYTES, delay: float = DELAY_S):
        self.large_bytes = large_bytes
        self.delay = delay
        self.trims = 0
        self._trim = _malloc_trim()
        self._pending: Optional[asyncio.TimerHandle] = None
        self._due = 0.0

    def after(self, size: int) -> None:
        if size < self.large_bytes or self._trim is None:
            return
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.delay
        if self._pending is None:
            self._pending = loop.call_at(self._due, self._fire, loop)

    def _fire(self, loop: Any) -> None:
        if loop.time() < self._due:  # another large message came since: wait for calm
            self._pending = loop.call_at(self._due, self._fire, loop)
            return
        self._pending = None
        loop.run_in_executor(None, self._run)

    def _run(self) -> None:
        assert self._trim is not None
        self._trim(0)
        self.trims += 1


TRIMMER = Trimmer()  # one per process
