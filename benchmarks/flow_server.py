"""A plait Flow of no-op Executors behind a gRPC gateway, served from a process of its own. It
prints one JSON line once the Flow is ready and serves until its stdin closes (or its parent
dies). The Jina counterpart, run by Jina's interpreter, is interop/bench_jina_flow.py.

    python benchmarks/flow_server.py EXECUTORS PORT [PROTOCOL]
"""

from __future__ import annotations

import json
import os
import sys
import threading


def _wait_for_stdin_or_parent() -> None:
    parent = os.getppid()
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    while not closed.wait(0.5) and os.getppid() == parent:
        pass


def serve(flow, roles=lambda f: {}) -> None:  # noqa: ANN001  (a plait or a Jina Flow)
    """Start `flow`, print the JSON ready line on the original stdout, and serve until stdin
    closes or the parent dies. Whatever the Flow prints goes nowhere."""
    report = os.fdopen(os.dup(1), 'w')
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    with flow as f:
        print(json.dumps({'ready': True, 'pid': os.getpid(), 'roles': roles(f)}), file=report, flush=True)
        _wait_for_stdin_or_parent()


def main() -> int:
    executors, port = int(sys.argv[1]), int(sys.argv[2])
    protocol = sys.argv[3] if len(sys.argv) > 3 else 'grpc'
    from bench_executors import NoOp

    from plait import Flow

    flow = Flow(port=port, protocol=protocol, quiet=True)
    for i in range(executors):
        flow = flow.add(uses=NoOp, name=f'executor{i}')
    serve(flow, lambda f: {'gateway': f.process_of('gateway').pid,
                           **{f'executor{i}': f.process_of(f'executor{i}/rep-0').pid for i in range(executors)}})
    return 0


if __name__ == '__main__':
    sys.exit(main())
