"""The life of a serving process as a small state machine: which transitions exist and what
each state means for health. Every transition is logged once, with the address."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from typing import Optional


class State(enum.Enum):
    STARTING = 'starting'    # listening, but not able to take requests yet (health NOT_SERVING)
    READY = 'ready'          # takes requests (health SERVING)
    DRAINING = 'draining'    # finishing in-flight requests, refusing new ones (NOT_SERVING)
    STOPPED = 'stopped'


_TRANSITIONS = {
    State.STARTING: {State.READY, State.DRAINING, State.STOPPED},
    State.READY: {State.DRAINING, State.STOPPED},
    State.DRAINING: {State.STOPPED},
    State.STOPPED: set(),
}


class Lifecycle:
    def __init__(self, logger: logging.Logger, address: str):
        self.state = State.STARTING
        self._logger = logger
        self._address = address

    @property
    def accepts_requests(self) -> bool:
        return self.state is State.READY

    def move_to(self, new: State, detail: str = '') -> bool:
        """Go to `new` if allowed; False (and nothing logged) if not."""
        if new not in _TRANSITIONS[self.state]:
            return False
        self.state = new
        self._logger.info('%s at %s%s', new.value, self._address, f' ({detail})' if detail else '')
        return True


def signal_ready(fd: Optional[int]) -> None:
    """Tell the parent we are ready: one line on an inherited pipe (no polling needed)."""
    if fd is None:
        return
    try:
        os.write(fd, b'ready\n')
        os.close(fd)
    except OSError:
        pass


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as dead)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[-1].split()[0] not in ('Z', 'X')
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


async def exit_when_parent_dies(stop: asyncio.Event) -> None:
    """A replica never outlives the Flow/Deployment process that started it (its parent,
    or the user process behind the fork server)."""
    parent = os.environ.get('PLAIT_PARENT_PID')
    if not parent:
        return
    while not stop.is_set():
        if not process_alive(int(parent)):
            stop.set()
            return
        await asyncio.sleep(0.5)
