"""Logging: one readable line per state change. Rich on a terminal, plain lines otherwise
(child processes write plain lines that their parent passes through). PLAIT_LOG_LEVEL sets
the level (DEBUG adds process ids and connection details)."""

from __future__ import annotations

import logging
import os
import sys

_configured = False


def log_level() -> int:
    name = os.environ.get('PLAIT_LOG_LEVEL', 'INFO').upper()
    return getattr(logging, name, logging.INFO) if isinstance(getattr(logging, name, None), int) else logging.INFO


def configure_logging() -> None:
    """Install one handler on the `plait` logger, once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger('plait')
    root.setLevel(log_level())
    root.propagate = False
    use_rich = sys.stderr.isatty() and not os.environ.get('PLAIT_LOG_NO_COLOR')
    handler: logging.Handler
    if use_rich:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter('%(name_short)s@%(process)d %(message)s'))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            '%(levelname)-7s %(name_short)s@%(process)d %(message)s [%(asctime)s]', '%H:%M:%S'))
    handler.addFilter(_short_name)
    root.addHandler(handler)


def _short_name(record: logging.LogRecord) -> bool:
    record.name_short = record.name[len('plait.'):] if record.name.startswith('plait.') else record.name
    return True


def get_logger(name: str) -> logging.Logger:
    configure_logging()
    return logging.getLogger(f'plait.{name}')
