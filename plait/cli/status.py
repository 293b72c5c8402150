"""`plait status`: what a server reports about itself (`_status` / `GET /status`), as tables."""

from __future__ import annotations

import sys

from plait.cli.target import Deadline, ProbeFailed, open_probe, parse_url


def status(url: str, timeout_ms: int = 3000, tls_ca: str | None = None, token: str | None = None) -> int:
    """Print the `jina` and `envs` maps of the server at `url`; 0, or 1 if it did not answer."""
    try:
        target = parse_url(url)
    except ValueError as e:
        print(f'plait status: {e}', file=sys.stderr)
        return 2
    try:
        with open_probe(target, tls_ca, token) as probe:
            info = probe.status(Deadline(timeout_ms))
    except ProbeFailed as e:
        print(f'plait status: {e}', file=sys.stderr)
        return 1
    from rich.console import Console  # only here: status is for humans, not probes
    from rich.table import Table

    console = Console()
    for section in ('jina', 'envs'):
        table = Table(title=f'{section} ({url})', title_justify='left')
        table.add_column('key', style='bold', no_wrap=True)
        table.add_column('value', overflow='fold')
        for key, value in sorted(info[section].items()):
            table.add_row(key, str(value))
        console.print(table)
    return 0
