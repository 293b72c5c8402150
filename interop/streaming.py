"""Streaming endpoints across the two frameworks (`stream_doc` over gRPC, Server-Sent Events
over HTTP). Each side runs in its own virtual environment:

    python streaming.py serve plait-deployment GRPC          # a plait Deployment (the executor itself)
    python streaming.py serve plait-flow GRPC HTTP           # a plait Flow: pre -> gen -> post
    python streaming.py serve jina-flow GRPC HTTP            # a Jina Flow of the generator alone
    python streaming.py check jina|plait LABEL GRPC [HTTP]   # stream with that framework's client

The generator yields one Token per word of the prompt; plait's Flow upper-cases the prompt
before it and adds '!' to each token after it.
"""

import asyncio
import sys

from docarray import BaseDoc


class Prompt(BaseDoc):
    text: str = ''


class Token(BaseDoc):
    text: str = ''


def serve(kind: str, ports: list[int]) -> None:
    if kind.startswith('plait'):
        from plait import Deployment, Executor, Flow, requests
    else:
        from jina import Deployment, Executor, Flow, requests  # noqa: F401

    class Words(Executor):
        @requests(on='/gen')
        async def gen(self, doc: Prompt, **kwargs) -> Token:
            for word in doc.text.split():
                yield Token(text=word)

    if kind == 'plait-deployment':
        server = Deployment(uses=Words, port=ports[0], quiet=True)
    elif kind == 'plait-flow':
        class Upper(Executor):
            @requests
            def up(self, doc: Prompt, **kwargs) -> Prompt:
                return Prompt(text=doc.text.upper())

        class Exclaim(Executor):
            @requests
            def bang(self, doc: Token, **kwargs) -> Token:
                return Token(text=doc.text + '!')

        server = Flow(protocol=['grpc', 'http'], port=ports, quiet=True) \
            .add(uses=Upper, name='pre').add(uses=Words, name='gen').add(uses=Exclaim, name='post')
    else:
        server = Flow(protocol=['grpc', 'http'], port=ports).add(uses=Words, name='gen')
    with server:
        print('READY', flush=True)
        server.block()


async def _stream(client, on: str, prompt: str) -> list[str]:
    return [doc.text async for doc in client.stream_doc(on=on, inputs=Prompt(text=prompt), return_type=Token)]


def check(framework: str, label: str, ports: list[int]) -> int:
    if framework == 'jina':
        from jina import Client
    else:
        from plait import Client
    expected = {'plait-flow': ['A!', 'B!', 'C!'], 'plait-deployment': ['a', 'b', 'c'],
                'jina-flow': ['a', 'b', 'c']}[label]
    failed = 0
    for protocol, port in zip(['grpc', 'http'], ports):
        client = Client(host='127.0.0.1', port=port, protocol=protocol, asyncio=True)
        try:
            got = asyncio.run(_stream(client, '/gen', 'a b c'))
        except Exception as e:  # noqa: BLE001  (reported, the check goes on)
            got = f'{type(e).__name__}: {e}'
        ok = got == expected
        failed += not ok
        print(f'  {"ok  " if ok else "FAIL"} {framework} client stream_doc over {protocol} -> {label}: {got}')
    return 1 if failed else 0


if __name__ == '__main__':
    if sys.argv[1] == 'serve':
        serve(sys.argv[2], [int(p) for p in sys.argv[3:]])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]]))
