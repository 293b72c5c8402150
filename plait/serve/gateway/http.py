"""HttpServer: runs the gateway's FastAPI app (HTTP or WebSocket) with uvicorn inside the
gateway's own event loop, optionally over TLS.

uvicorn's `serve()` would take over SIGINT/SIGTERM; the gateway runtime owns signals, so this
drives uvicorn's startup, main loop and shutdown itself."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from plait.errors import RuntimeFailedToStart
from plait.serve.gateway.config import GatewayConfig
from plait.serve.gateway.core import GatewayCore


def _log_level() -> str:
    level = os.environ.get('PLAIT_LOG_LEVEL', '').lower()
    return 'debug' if level == 'debug' else 'warning'


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
BIG_BUFFER_BYTES = 1 << 20


def return_big_buffers_to_the_os() -> None:
    """Serve allocations of BIG_BUFFER_BYTES and more from their own mmap, returned to the OS
    when freed. glibc otherwise raises its mmap threshold after the first large free (up to 32
    MiB), so request bodies of a few MiB stay in its heap and the gateway's memory after a big
    upload depends on what came before. A fixed threshold keeps it flat; without glibc, nothing."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.mallopt(M_MMAP_THRESHOLD, BIG_BUFFER_BYTES)
    except (OSError, AttributeError):
        pass


class HttpServer:
    def __init__(self, core: GatewayCore, config: GatewayConfig, port: int, websocket: bool = False,
                 logger: logging.Logger | None = None, token_check: Any = None):
        self.core = core
        self.token_check = token_check  # plait.auth.TokenCheck, or None: no token needed
        self.config = config
        self.port = port
        self.websocket = websocket
        self.logger = logger or core.logger
        self._server: Any = None
        self._main_loop: asyncio.Task | None = None

    def _uvicorn_config(self) -> Any:
        import uvicorn

        from plait.serve.gateway.http_app import build_app

        cfg = self.config
        if bool(cfg.ssl_certfile) != bool(cfg.ssl_keyfile):
            raise RuntimeFailedToStart('TLS needs both ssl_certfile and ssl_keyfile')
        for path, what in ((cfg.ssl_certfile, 'certificate file'), (cfg.ssl_keyfile, 'key file')):
            if path and not os.path.isfile(path):
                raise RuntimeFailedToStart(f'cannot read TLS {what} {path!r}: no such file')
        options: dict[str, Any] = {
            'host': cfg.host, 'port': self.port, 'lifespan': 'off', 'log_level': _log_level(),
            'access_log': False, 'ws_max_size': max(cfg.max_body_bytes, 1 << 16),
            'timeout_graceful_shutdown': max(cfg.grace, 0.1), 'ssl_certfile': cfg.ssl_certfile,
            'ssl_keyfile': cfg.ssl_keyfile,
        }
        options.update(cfg.uvicorn_kwargs or {})
        options['port'] = self.port  # the gateway's port list decides
        app = build_app(self.core, cfg, websocket=self.websocket, logger=self.logger, token_check=self.token_check)
        try:
            config = uvicorn.Config(app, **options)
        except TypeError as e:
            raise RuntimeFailedToStart(f'uvicorn_kwargs: {e}') from None
        from plait.auth import redact_logs

        # uvicorn (also as the logger of websockets' handshakes) shows request headers at DEBUG
        redact_logs('uvicorn', 'uvicorn.error', 'uvicorn.access', 'websockets', 'websockets.server')
        try:
            config.load()
        except (OSError, ValueError) as e:  # unreadable or mismatched TLS files, bad options
            raise RuntimeFailedToStart(f'cannot start the {self.protocol} server on port {self.port}: {e}') from None
        return config

    @property
    def protocol(self) -> str:
        return 'websocket' if self.websocket else 'http'

    async def start(self) -> None:
        """Return once the server listens; RuntimeFailedToStart when it cannot (port in use...)."""
        import uvicorn

        config = self._uvicorn_config()
        return_big_buffers_to_the_os()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise RuntimeFailedToStart(f'cannot listen on {self.config.host}:{self.port} ({self.protocol}): '
                                       f'port {self.port} is already in use or the address is not available') from None
        self._server = server
        self._main_loop = asyncio.ensure_future(server.main_loop())

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace period), close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._main_loop is not None:
            await self._main_loop
        await server.shutdown()
