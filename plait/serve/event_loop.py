"""The event loop every serving process runs on: uvloop when it is installed (it comes with
uvicorn[standard]), else asyncio's own. Most of a hop's CPU in the gateway and executors is
event-loop work around gRPC's completions (wakeups, callbacks, tasks), which uvloop does in C.
PLAIT_UVLOOP=0 keeps asyncio's loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, Callable, Optional, TypeVar

try:  # imported with the serving modules, so the fork server has it loaded for every child
    import uvloop
except ImportError:  # pragma: no cover - not installed (e.g. Windows)
    uvloop = None

T = TypeVar('T')


def loop_factory() -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
    """uvloop's new_event_loop, or None (asyncio's default) when off or not installed."""
    if uvloop is None or os.environ.get('PLAIT_UVLOOP', '1').strip().lower() in ('0', 'false', 'no', 'off'):
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on the serving event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
