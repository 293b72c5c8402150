"""Logging: one readable line per state change. Rich on a terminal, plain lines otherwise
(child processes write plain lines that their parent passes through). PLAIT_LOG_LEVEL sets
the level (DEBUG adds process ids and connection details).

Library manners: plait's records always propagate to the root logger. When the program has
configured logging itself (handlers on the root logger, as `logging.basicConfig` installs, or
on the `plait` logger), plait installs nothing and sets no level unless PLAIT_LOG_LEVEL asks,
so its records go where the program sends its own. Only when nothing is configured does it add
its console handler, which stays quiet from the moment the program configures the root logger
(so no line is written twice)."""

from __future__ import annotations

import logging
import os
import sys

_configured = False


def log_level() -> int:
    name = os.environ.get('PLAIT_LOG_LEVEL', 'INFO').upper()
    return getattr(logging, name, logging.INFO) if isinstance(getattr(logging, name, None), int) else logging.INFO


def configure_logging() -> None:
    """Give the `plait` logger a console handler and a level unless the program configured
    logging itself; once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    logger = logging.getLogger('plait')
    if logging.getLogger().handlers or logger.handlers:  # the program's own setup wins
        if 'PLAIT_LOG_LEVEL' in os.environ:
            logger.setLevel(log_level())
        return
    logger.setLevel(log_level())
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
    handler.addFilter(_unless_root_configured)
    handler.addFilter(_short_name)
    logger.addHandler(handler)


def _unless_root_configured(record: logging.LogRecord) -> bool:
    """plait's console handler writes only while the root logger has no handler of its own."""
    return not logging.getLogger().handlers


def _short_name(record: logging.LogRecord) -> bool:
    record.name_short = record.name[len('plait.'):] if record.name.startswith('plait.') else record.name
    return True


def get_logger(name: str) -> logging.Logger:
    configure_logging()
    return logging.getLogger(f'plait.{name}')
