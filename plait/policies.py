"""How plait keeps going when parts fail, as small frozen values: restarting a process that
died (the supervisor) and retrying a call on another replica (the gateway). No imports of
plait, so every layer can take one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a process that dies while its group runs, after a growing delay; give up on one
    that died `max_restarts` times within `window` seconds."""

    enabled: bool = True
    max_restarts: int = 5        # restarts allowed within `window` seconds...
    window: float = 60.0         # ...before the process is given up on
    delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)

    def delay(self, attempt: int) -> float:
        return self.delays[min(attempt, len(self.delays) - 1)]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a call to a deployment on its next replica after a transport error in `retry_on`
    (gRPC status names), `retries` times (-1: as Jina, max(3, replicas) tries after the first);
    once every replica failed, pause `backoff` x attempt seconds between tries. A timeout is
    never retried: timeout_send bounds the whole call."""

    retries: int = -1
    backoff: float = 0.05
    retry_on: frozenset[str] = frozenset({'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'CANCELLED',
                                          'UNKNOWN', 'INTERNAL'})

    def tries(self, replicas: int) -> int:
        return self.retries + 1 if self.retries >= 0 else max(3, replicas) + 1

    def retries_after(self, code_name: str) -> bool:
        return code_name in self.retry_on and code_name != 'DEADLINE_EXCEEDED'
