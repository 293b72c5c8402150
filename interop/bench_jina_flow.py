"""Section G's Jina Flow of no-op Executors (benchmarks/hotpath_bench.py), run by Jina's own
interpreter from the interop venv, never by plait: the counterpart of benchmarks/flow_server.py,
whose `serve` it shares (benchmarks/ is on its PYTHONPATH; that module imports no plait).

    python interop/bench_jina_flow.py EXECUTORS PORT [PROTOCOL]
"""

import os
import sys

from flow_server import serve


def main() -> int:
    executors, port = int(sys.argv[1]), int(sys.argv[2])
    protocol = sys.argv[3] if len(sys.argv) > 3 else 'grpc'
    os.environ.setdefault('JINA_HIDE_SURVEY', '1')
    os.environ.setdefault('JINA_LOG_LEVEL', 'ERROR')
    from jina import Executor, Flow, requests

    class NoOp(Executor):
        @requests
        def foo(self, docs, **kwargs):  # unannotated: the framework's default documents
            pass

    flow = Flow(port=port, protocol=protocol)
    for i in range(executors):
        flow = flow.add(uses=NoOp, name=f'executor{i}')  # Jina returns a new Flow
    serve(flow)
    return 0


if __name__ == '__main__':
    sys.exit(main())
