"""`python auth_client.py PORT_GRPC PORT_HTTP` (in Jina's environment): a Jina Client against a
plait Flow that needs the token in $PLAIT_AUTH_TOKEN. With the token (gRPC metadata, the HTTP
header) documents come back; without it the call is refused. Exits 1 on the first mismatch."""

import os
import sys

from docarray import DocList
from docarray.documents import TextDoc
from jina import Client

TOKEN = os.environ['PLAIT_AUTH_TOKEN']
CREDENTIALS = {'grpc': {'metadata': (('authorization', f'Bearer {TOKEN}'),)},
               'http': {'headers': {'Authorization': f'Bearer {TOKEN}'}}}
ok = True
for protocol, port in zip(('grpc', 'http'), sys.argv[1:]):
    client = Client(port=int(port), protocol=protocol)
    inputs = DocList[TextDoc]([TextDoc(text='hello')])
    docs = client.post('/', inputs=inputs, return_type=DocList[TextDoc], **CREDENTIALS[protocol])
    texts = [d.text for d in docs]
    try:
        Client(port=int(port), protocol=protocol).post('/', inputs=inputs, return_type=DocList[TextDoc])
        refused = 'not refused'
    except Exception as e:  # noqa: BLE001  (Jina raises its own error types)
        # gRPC: the UNAUTHENTICATED status; HTTP: Jina's client raises the 401 body it got
        refused = ('refused' if 'UNAUTHENTICATED' in str(e) or 'a valid token is required' in str(e)
                   else f'failed otherwise: {e!r}')
    good = texts == ['HELLO'] and refused == 'refused'
    ok = ok and good
    print(f"{'ok  ' if good else 'FAIL'} jina client with a token -> {protocol}:{port}: post={texts}; "
          f'without the token: {refused}', flush=True)
sys.exit(0 if ok else 1)
