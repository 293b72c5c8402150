"""Retries of a post, as Jina documents them (`max_attempts`, `initial_backoff`, `max_backoff`,
`backoff_multiplier`), for transient failures only: the server could not be reached, the
connection broke, or it did not answer in time. An Executor's error is an answer, never retried.

Requests already answered are not sent again: a retry resends the requests taken from the
inputs and not yet answered, then goes on with the rest of the inputs."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from plait.errors import BadConfig, InternalNetworkError, RequestTimeout

TRANSIENT = (InternalNetworkError, RequestTimeout)


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 1           # sending attempts, the first included
    initial_backoff: float = 0.5    # seconds before the first retry
    max_backoff: float = 2.0        # the longest wait between attempts
    backoff_multiplier: float = 1.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise BadConfig(f'max_attempts must be >= 1, got {self.max_attempts}')
        if min(self.initial_backoff, self.max_backoff, self.backoff_multiplier) < 0:
            raise BadConfig('initial_backoff, max_backoff and backoff_multiplier must be >= 0')

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1, 2...): initial_backoff after the
        first, then random(0, min(initial * multiplier ** (attempt - 1), max_backoff)), as Jina."""
        if attempt == 1:
            return min(self.initial_backoff, self.max_backoff)
        return random.uniform(0, min(self.initial_backoff * self.backoff_multiplier ** (attempt - 1),
                                     self.max_backoff))


class Unanswered:
    """The requests of one post, taken lazily from `source`; remembers those taken and not yet
    answered, so that a retry can send them again before going on."""

    def __init__(self, source: Iterable[Any]):
        self._source = iter(source)
        self._pending: dict[str, Any] = {}  # request_id -> request, in the order taken

    def _take(self, requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            self._pending[request.header.request_id] = request
            yield request

    def first(self) -> Iterator[Any]:
        return self._take(self._source)

    def again(self) -> Iterator[Any]:
        """The requests of the next attempt: the unanswered ones, then the rest of the inputs."""
        pending, self._pending = list(self._pending.values()), {}
        return self._take(itertools.chain(pending, self._source))

    def answered(self, response: Any) -> None:
        self._pending.pop(response.header.request_id, None)
