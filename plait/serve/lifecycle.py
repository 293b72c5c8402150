"""The life of a serving process as a small state machine: which transitions exist and what
each state means for health. Every transition is logged once, with the address."""

from __future__ import annotations

import enum
import logging


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
