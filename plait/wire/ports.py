"""Picking free TCP ports for the microservices a Flow or Deployment starts."""

from __future__ import annotations

import os
import random
import socket

_handed_out: set[int] = set()


def _is_free(port: int, host: str = '0.0.0.0') -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on, never the same twice in this process (so parallel starts
    do not collide). Range from PLAIT_RANDOM_PORT_MIN/MAX (default 49153-59999)."""
    low = int(os.environ.get('PLAIT_RANDOM_PORT_MIN', 49153))
    high = int(os.environ.get('PLAIT_RANDOM_PORT_MAX', 59999))
    for _ in range(1000):
        port = random.randint(low, high)
        if port not in _handed_out and _is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f'no free port found between {low} and {high}')

