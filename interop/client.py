"""`python client.py jina|plait PORT_GRPC [PORT_HTTP PORT_WS]`: post (twice), readiness and dry_run over
each protocol; exits 1 on the first mismatch."""

import sys

from docarray import DocList
from docarray.documents import TextDoc

if sys.argv[1] == 'jina':
    from jina import Client
else:
    from plait import Client

ok = True
for protocol, port in zip(('grpc', 'http', 'websocket'), sys.argv[2:]):
    client = Client(port=int(port), protocol=protocol)
    ready, dry = client.is_flow_ready(), client.dry_run()
    docs = client.post('/', inputs=DocList[TextDoc]([TextDoc(text='hello'), TextDoc(text='world')]),
                       return_type=DocList[TextDoc])
    texts = [d.text for d in docs]
    # a second post on the same client: plait's WebSocket client sends it on the kept connection
    again = [d.text for d in client.post('/', inputs=DocList[TextDoc]([TextDoc(text='again')]),
                                         return_type=DocList[TextDoc])]
    good = ready and dry and texts == ['HELLO', 'WORLD'] and again == ['AGAIN']
    ok = ok and good
    print(f"{'ok  ' if good else 'FAIL'} {sys.argv[1]} client -> {protocol}:{port}: ready={ready} dry_run={dry} "
          f'post={texts} then {again}', flush=True)
sys.exit(0 if ok else 1)
