"""`plait ping` and `plait dryrun`: probes for Kubernetes and humans, with one log line per step.

Only stdlib is imported here; the probe for the URL's protocol is imported when it is opened.
"""

from __future__ import annotations

import logging
import sys
import time

from plait.cli.target import Deadline, ProbeFailed, Target, open_probe, parse_url, probe_class

RETRY_PAUSE = 1.0  # seconds between attempts


def get_logger() -> logging.Logger:
    """The `PLAIT` logger writing plain `LEVEL PLAIT@pid message [time]` lines to the current stderr."""
    from plait.logs import log_level  # stdlib-only module; its configure_logging would import rich

    logger = logging.getLogger('PLAIT')
    logger.propagate = False
    logger.setLevel(log_level())
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(levelname)-7s %(name)s@%(process)d %(message)s [%(asctime)s]',
                                           '%m/%d/%y %H:%M:%S'))
    logger.addHandler(handler)
    return logger


def probe_once(target: Target, kind: str, timeout_ms: int, tls_ca: str | None, token: str | None = None) -> None:
    """One round: check `kind` at `target` within `timeout_ms`, or raise ProbeFailed."""
    deadline = Deadline(timeout_ms)
    with open_probe(target, tls_ca, token) as probe:
        probe.check(kind, deadline)


def ping(kind: str, url: str, timeout_ms: int = 3000, attempts: int = 1, min_successful: int = 1,
         tls_ca: str | None = None, token: str | None = None) -> int:
    """Probe `attempts` times, 1 s apart; 0 if at least `min_successful` rounds succeeded, else 1."""
    logger = get_logger()
    try:
        target = parse_url(url)
    except ValueError as e:
        logger.error('%s', e)
        return 2
    probe_class(target)  # import the protocol's modules now, so round latencies leave them out
    latencies: list[float] = []
    for i in range(attempts):
        logger.info('ping %s at %d round...', url, i)
        start = time.perf_counter()
        try:
            probe_once(target, kind, timeout_ms, tls_ca, token)
            latencies.append(time.perf_counter() - start)
        except ProbeFailed as e:
            logger.error('%s', e)
            logger.warning('not responding, retry (%d/%d) in 1s', i + 1, attempts)
        elapsed = time.perf_counter() - start
        logger.info('ping %s at %d round takes %d seconds (%.2fs)', url, i, int(elapsed), elapsed)
        if i < attempts - 1:
            time.sleep(RETRY_PAUSE)
    if latencies:
        logger.info('avg. latency: %d ms', round(sum(latencies) / len(latencies) * 1000))
    lost = attempts - len(latencies)
    if lost:
        logger.warning('message lost %d%% (%d/%d)', round(lost * 100 / attempts), lost, attempts)
    return 0 if len(latencies) >= min_successful else 1


def dryrun(url: str, timeout_ms: int = 3000, tls_ca: str | None = None, token: str | None = None) -> int:
    """Send one dry run through the Flow at `url`; print `dry run successful` (0) or the error (1)."""
    try:
        target = parse_url(url)
    except ValueError as e:
        print(f'plait dryrun: {e}', file=sys.stderr)
        return 2
    try:
        with open_probe(target, tls_ca, token) as probe:
            ok, description = probe.dry_run(Deadline(timeout_ms))
    except ProbeFailed as e:
        ok, description = False, str(e)
    if ok:
        print('dry run successful')
        return 0
    print(f'dry run failed: {description}', file=sys.stderr)
    return 1
