"""Servers for the interop check: `python servers.py plait-flow|jina-flow PORT...` (each side
runs in its own virtual environment)."""

import sys


def plait_flow(ports: list[int]) -> None:
    """Also with a token: the Flow reads $PLAIT_AUTH_TOKEN when it is set."""
    from plait import DocumentArray, Executor, Flow, requests

    class Upper(Executor):
        @requests
        def up(self, docs: DocumentArray, **kwargs):
            for doc in docs:
                doc.text = (doc.text or '').upper()

    protocols = ['grpc', 'http', 'websocket'][:len(ports)]
    with Flow(protocol=protocols, port=ports, quiet=True).add(uses=Upper) as f:
        print('READY', flush=True)
        f.block()


def jina_flow(ports: list[int]) -> None:
    from docarray import DocList
    from docarray.documents import TextDoc
    from jina import Executor, Flow, requests

    class Upper(Executor):
        @requests
        def up(self, docs: DocList[TextDoc], **kwargs) -> DocList[TextDoc]:
            for doc in docs:
                doc.text = (doc.text or '').upper()
            return docs

    with Flow(protocol=['grpc', 'http', 'websocket'], port=ports).add(uses=Upper) as f:
        print('READY', flush=True)
        f.block()


if __name__ == '__main__':
    {'plait-flow': plait_flow, 'jina-flow': jina_flow}[sys.argv[1]]([int(p) for p in sys.argv[2:]])
