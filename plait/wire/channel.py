"""gRPC options every plait hop shares (channels and servers alike) and compression names."""

from __future__ import annotations

import os
from typing import Any, Optional

import grpc

DEFAULT_MAX_RECEIVE_BYTES = 256 * 1024 * 1024  # a guard against hostile payloads; -1 = unlimited

_COMPRESSION = {None: None, 'none': grpc.Compression.NoCompression, 'gzip': grpc.Compression.Gzip,
                'deflate': grpc.Compression.Deflate}


def _env_bytes(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def grpc_options() -> list[tuple[str, Any]]:
    """Channel and server options shared by every plait hop: unlimited sends, receives capped
    at 256 MiB (PLAIT_GRPC_SEND_BYTES / PLAIT_GRPC_RECV_BYTES override; -1 = unlimited), and
    keepalive pings."""
    return [
        ('grpc.max_send_message_length', _env_bytes('PLAIT_GRPC_SEND_BYTES', -1)),
        ('grpc.max_receive_message_length', _env_bytes('PLAIT_GRPC_RECV_BYTES', DEFAULT_MAX_RECEIVE_BYTES)),
        ('grpc.keepalive_time_ms', 9999),
        ('grpc.keepalive_timeout_ms', 4999),
        ('grpc.keepalive_permit_without_calls', 1),
        ('grpc.http2.max_pings_without_data', 0),
        ('grpc.so_reuseport', 0),
    ]


def server_options() -> list[tuple[str, Any]]:
    """grpc_options() for a server, which also accepts the keepalive pings its peers send while
    no data flows (plait's and Jina's clients ping every ~10 s, also during a long call): gRPC's
    default accepts one such ping per 5 minutes and answers more with GOAWAY "too_many_pings",
    failing every call that runs longer than ~40 s. Pings up to one a second are welcome."""
    return grpc_options() + [('grpc.http2.min_ping_interval_without_data_ms', 1000)]


def compression_of(name: Optional[str]) -> Optional[grpc.Compression]:
    """The grpc.Compression for `none`, `gzip` or `deflate` (None: the channel's default)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _COMPRESSION:
        raise ValueError(f'compression={name!r}: use none, gzip or deflate')
    return _COMPRESSION[key]
