"""RestartPolicy, RetryPolicy and the supervisor's process states, in memory."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest

from plait.orchestrate.supervisor import ProcessState, Supervisor
from plait.policies import RestartPolicy, RetryPolicy


def test_retry_policy_tries_and_what_it_retries():
    assert RetryPolicy().tries(replicas=1) == 4 and RetryPolicy().tries(replicas=5) == 6  # Jina's rule
    assert RetryPolicy(retries=0).tries(replicas=5) == 1 and RetryPolicy(retries=2).tries(replicas=1) == 3
    policy = RetryPolicy()
    assert policy.retries_after('UNAVAILABLE') and policy.retries_after('INTERNAL')
    assert not policy.retries_after('DEADLINE_EXCEEDED')   # timeout_send bounds the whole call
    assert not policy.retries_after('INVALID_ARGUMENT')
    with pytest.raises(AttributeError):
        policy.retries = 3  # frozen


class DyingProcess:
    """A ServiceProcess stand-in that has always just exited."""

    def __init__(self) -> None:
        self.label, self.pid, self.tail, self.starts = 'executor0/rep-0', 123, [], 0
        self.proc = SimpleNamespace(poll=lambda: 1, returncode=1)

    def wait_or_kill(self, now: float) -> None:
        pass

    def start(self) -> None:
        self.starts += 1


def test_supervisor_restarts_with_growing_delays_then_gives_up():
    p = DyingProcess()
    policy = RestartPolicy(max_restarts=2, window=60.0, delays=(0.5, 1.0))
    sup = Supervisor([p], policy, threading.Lock(), lambda: True, logging.getLogger('test'))
    sup._check(p, now=0.0)
    assert sup._state[p.label] is ProcessState.RESTART_DUE and sup._due[p.label] == 0.5
    sup._check(p, now=0.4)
    assert p.starts == 0                        # not yet due
    sup._check(p, now=0.5)
    assert p.starts == 1 and sup._state[p.label] is ProcessState.RUNNING
    sup._check(p, now=0.6)                      # died again: the next delay
    assert sup._due[p.label] == pytest.approx(1.6)
    sup._check(p, now=1.6)
    sup._check(p, now=1.7)                      # a third death within the window: given up
    assert sup.given_up() == {p.label} and p.starts == 2
    sup._check(p, now=100.0)
    assert p.starts == 2                        # and left alone


def test_an_illegal_move_raises():
    p = DyingProcess()
    sup = Supervisor([p], RestartPolicy(), threading.Lock(), lambda: True, logging.getLogger('test'))
    with pytest.raises(RuntimeError, match='cannot go from running to running'):
        sup._move(p, ProcessState.RUNNING)
    sup._move(p, ProcessState.GIVEN_UP)
    with pytest.raises(RuntimeError, match='cannot go from given up to restart due'):
        sup._move(p, ProcessState.RESTART_DUE)
