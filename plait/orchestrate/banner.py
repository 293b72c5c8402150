"""The "ready to serve" panel printed once a Flow or Deployment is up."""

from __future__ import annotations

import socket
from typing import Sequence


def private_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return '127.0.0.1'


def print_ready_banner(kind: str, endpoints: Sequence[tuple[str, int]], host: str = '0.0.0.0') -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(justify='right')
    table.add_column()
    ip = private_ip()
    for protocol, port in endpoints:
        table.add_row('🔗 Protocol', protocol.upper())
        table.add_row('🏠 Local', f'{host}:{port}')
        table.add_row('🔒 Private', f'{ip}:{port}')
    Console(highlight=False).print(Panel(table, title=f'🎉 {kind} is ready to serve!', expand=False))
