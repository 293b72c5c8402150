"""A Flow of no-op Executors behind a gRPC gateway, served from a process of its own, for
plait or for Jina (each run with its own interpreter: Jina's from the interop venv). It prints
one JSON line once the Flow is ready and serves until its stdin closes (or its parent dies).

    python benchmarks/flow_server.py plait|jina EXECUTORS PORT
"""

from __future__ import annotations

import json
import os
import sys
import threading


def _noop_class(executor_base: type, requests: object) -> type:
    class NoOp(executor_base):  # type: ignore[misc, valid-type]
        @requests  # type: ignore[misc]
        def foo(self, docs, **kwargs):  # noqa: ANN001  (unannotated: the framework's default documents)
            pass

    return NoOp


def _wait_for_stdin_or_parent() -> None:
    parent = os.getppid()
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    while not closed.wait(0.5) and os.getppid() == parent:
        pass


def main() -> int:
    framework, executors, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    report = os.fdopen(os.dup(1), 'w')  # the JSON line; whatever the Flow prints goes nowhere
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    if framework == 'plait':
        from bench_executors import NoOp

        from plait import Flow

        flow = Flow(port=port, quiet=True)
    else:
        os.environ.setdefault('JINA_HIDE_SURVEY', '1')
        os.environ.setdefault('JINA_LOG_LEVEL', 'ERROR')
        from jina import Executor, Flow, requests

        NoOp = _noop_class(Executor, requests)
        flow = Flow(port=port)
    for i in range(executors):
        flow = flow.add(uses=NoOp, name=f'executor{i}')  # Jina returns a new Flow
    with flow as f:
        roles = {}
        if framework == 'plait':
            roles = {'gateway': f.process_of('gateway').pid,
                     **{f'executor{i}': f.process_of(f'executor{i}/rep-0').pid for i in range(executors)}}
        print(json.dumps({'ready': True, 'pid': os.getpid(), 'roles': roles}), file=report, flush=True)
        _wait_for_stdin_or_parent()
    return 0


if __name__ == '__main__':
    sys.exit(main())
