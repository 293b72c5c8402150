"""GPU placement as Jina does it: `env={'CUDA_VISIBLE_DEVICES': 'RR'}` (or that variable in the
environment) gives the replicas of a Deployment the GPUs round-robin, one each: replica i sees
device i mod n. Forms: `RR` (every GPU), `RRm:n` / `RR[m:n]` / `RRm:n:s` (a slice of them),
`RR1,3` (these), `RR2` or `RR<uuid>` (that one). Counting the GPUs (for `RR` and open slices)
asks `nvidia-smi -L`, else $CUDA_TOTAL_DEVICES."""

from __future__ import annotations

import os
import subprocess
from typing import Optional

from plait.errors import BadConfig

PREFIX = 'RR'


def _gpu_count(spec: str) -> int:
    try:
        out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and 'UUID' in out.stdout:
            return out.stdout.count('UUID')
    except (OSError, subprocess.TimeoutExpired):
        pass
    total = os.environ.get('CUDA_TOTAL_DEVICES', '')
    if total.isdigit() and int(total) > 0:
        return int(total)
    raise BadConfig(f'CUDA_VISIBLE_DEVICES={spec!r}: cannot count the GPUs (no nvidia-smi answered); '
                    'name them (e.g. RR0:2 or RR0,1) or set CUDA_TOTAL_DEVICES')


def devices_of(spec: str) -> list[str]:
    """The devices an `RR...` value names, in order."""
    body = spec[len(PREFIX):].strip()
    if body.startswith('[') and body.endswith(']'):
        body = body[1:-1]
    if ',' in body:
        return [part.strip() for part in body.split(',') if part.strip()]
    if ':' in body:
        try:
            bounds = [int(p) if p.strip() else None for p in body.split(':')]
        except ValueError:
            raise BadConfig(f'CUDA_VISIBLE_DEVICES={spec!r}: a slice takes numbers, e.g. RR0:2') from None
        start, stop = bounds[0], bounds[1] if len(bounds) > 1 else None
        known = stop is not None and stop >= 0 and (start is None or start >= 0)
        devices = range(stop if known else _gpu_count(spec))[slice(*bounds)]
        if not devices:
            raise BadConfig(f'CUDA_VISIBLE_DEVICES={spec!r} names no device')
        return [str(d) for d in devices]
    if body:
        return [body]
    return [str(d) for d in range(_gpu_count(spec))]


def device_per_replica(env: dict[str, str], replicas: int) -> Optional[list[str]]:
    """CUDA_VISIBLE_DEVICES for each replica when the Deployment's env (or this process's
    environment) asks for round-robin placement; None otherwise."""
    spec = env.get('CUDA_VISIBLE_DEVICES') or os.environ.get('CUDA_VISIBLE_DEVICES', '')
    if not spec.startswith(PREFIX):
        return None
    devices = devices_of(spec)
    return [devices[i % len(devices)] for i in range(replicas)]
