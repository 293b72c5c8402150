"""The Gateway: one process that routes requests through a graph of deployments and speaks
grpc, http and websocket to clients."""


def main(argv: list[str] | None = None) -> int:
    """`plait gateway ...`: run the gateway process (imported lazily; see runtime.py)."""
    from plait.serve.gateway.runtime import main as run

    return run(argv)
