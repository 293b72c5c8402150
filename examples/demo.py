"""`make demo`: serve the example Flow (Cleaner -> WordCounter) on gRPC and HTTP, and show how
to query it. Ctrl-C stops it."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_executors import Cleaner, WordCounter  # noqa: E402

from plait import Flow  # noqa: E402

GRPC_PORT = int(os.environ.get('DEMO_GRPC_PORT', 12345))
HTTP_PORT = int(os.environ.get('DEMO_HTTP_PORT', 12346))

HOW_TO = f'''
Try it from another terminal (the venv is .venv):

  plait Client:
    .venv/bin/python -c "from plait import Client, Document; \\
print(Client(port={GRPC_PORT}).post('/', [Document(text='  Hello   plait  World ')])[0])"

  health, readiness and dry run:
    .venv/bin/plait ping flow grpc://127.0.0.1:{GRPC_PORT}
    .venv/bin/plait dryrun grpc://127.0.0.1:{GRPC_PORT}
    .venv/bin/grpcurl -plaintext 127.0.0.1:{GRPC_PORT} grpc.health.v1.Health/Check
    .venv/bin/grpcurl -plaintext -d '{{"service": "readiness"}}' 127.0.0.1:{GRPC_PORT} grpc.health.v1.Health/Check
    .venv/bin/grpcurl -plaintext 127.0.0.1:{GRPC_PORT} jina.JinaGatewayDryRunRPC/dry_run

  HTTP:
    curl http://127.0.0.1:{HTTP_PORT}/readyz
    curl -X POST http://127.0.0.1:{HTTP_PORT}/post -H 'Content-Type: application/json' \\
         -d '{{"data": [{{"text": "Hello   HTTP"}}], "execEndpoint": "/"}}'
    open http://127.0.0.1:{HTTP_PORT}/docs for the Swagger UI

Ctrl-C stops the Flow.
'''


def main() -> None:
    flow = (Flow(protocol=['grpc', 'http'], port=[GRPC_PORT, HTTP_PORT])
            .add(uses=Cleaner, name='cleaner')
            .add(uses=WordCounter, name='counter', replicas=2))
    with flow:
        print(HOW_TO, flush=True)
        flow.block()


if __name__ == '__main__':
    main()
