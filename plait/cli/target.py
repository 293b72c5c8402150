"""What a probe talks to (a parsed URL), how long it may wait, and how it reports failure.

Stdlib only: the protocol-specific probe modules are imported by `open_probe` on demand, so an
HTTP probe never pays for importing grpc and vice versa.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from plait.errors import ProbeFailed

GRPC_SCHEMES = {'grpc': False, 'grpcs': True}
# WebSocket gateways answer the same plain HTTP routes on the same port.
HTTP_SCHEMES = {'http': False, 'https': True, 'ws': False, 'wss': True}
DEFAULT_PORTS = {'http': 80, 'https': 443, 'ws': 80, 'wss': 443}


@dataclass(frozen=True)
class Target:
    """A server to probe: host and port, whether it speaks gRPC or HTTP, and whether over TLS."""

    url: str
    host: str
    port: int
    http: bool
    tls: bool
    path: str = ''  # HTTP path prefix, e.g. behind an ingress

    @property
    def address(self) -> str:
        """`host:port` as gRPC and http.client expect it (IPv6 hosts in brackets)."""
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'{host}:{self.port}'


def parse_url(url: str) -> Target:
    """Parse `scheme://host:port[/prefix]` or bare `host:port` (gRPC); raise ValueError if unusable."""
    parts = urlsplit(url if '://' in url else f'grpc://{url}')
    scheme = parts.scheme.lower()
    if scheme not in GRPC_SCHEMES and scheme not in HTTP_SCHEMES:
        raise ValueError(f'unsupported scheme {scheme!r} in {url!r}: use grpc, grpcs, http, https, ws or wss')
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        raise ValueError(f'invalid port in {url!r}') from None
    if not parts.hostname or not port:
        raise ValueError(f'{url!r} needs a host and a port, e.g. grpc://localhost:12345')
    http = scheme in HTTP_SCHEMES
    tls = HTTP_SCHEMES[scheme] if http else GRPC_SCHEMES[scheme]
    return Target(url, parts.hostname, port, http, tls, parts.path.rstrip('/') if http else '')


class Deadline:
    """The time left for one probe round; every network wait asks it how long it may block."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self._end = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def remaining(self) -> float | None:
        """Seconds left (None = no limit); raise ProbeFailed once the time is up."""
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise ProbeFailed(self.expired())
        return left

    def expired(self) -> str:
        """The message for a probe that ran out of time."""
        return f'no answer within {self.timeout_ms} ms'


class Probe(Protocol):
    """One connection to a server, able to run each kind of check."""

    def check(self, kind: str, deadline: Deadline) -> None: ...

    def dry_run(self, deadline: Deadline) -> tuple[bool, str]: ...

    def status(self, deadline: Deadline) -> dict[str, dict[str, Any]]: ...

    def close(self) -> None: ...


def probe_class(target: Target) -> Callable[[Target, str | None, str | None], Probe]:
    """The probe class for `target`'s protocol, importing only that protocol's modules."""
    if target.http:
        from plait.cli.http_probe import HttpProbe

        return HttpProbe
    from plait.cli.grpc_probe import GrpcProbe

    return GrpcProbe


@contextmanager
def open_probe(target: Target, tls_ca: str | None = None, token: str | None = None) -> Iterator[Probe]:
    """A gRPC or HTTP probe for `target` (sending `token` if given), closed on exit."""
    probe = probe_class(target)(target, tls_ca, token)
    try:
        yield probe
    finally:
        probe.close()
