"""Talking to gateways shaped like Jina's docarray-v2 HTTP gateway, which serves each endpoint
as its own route (`POST /default`, `POST /foo`) instead of `POST /post`. A stdlib server plays
that gateway here; the same client was also checked by hand against a real Jina 3.27 Flow (see
the closing note of the HTTP work), which cannot be a test dependency."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from plait import Client, Document


class _JinaLikeGateway(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        type(self).seen.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        if self.path not in ('/default', '/shout'):
            self.send_response(404)
            self.end_headers()
            return
        docs = [{**d, 'text': (d.get('text') or '').upper() + ('!' if self.path == '/shout' else '')}
                for d in body['data']]
        answer = json.dumps({'data': docs, 'parameters': body.get('parameters') or {},
                             'header': {'requestId': 'r', 'targetExecutor': ''}}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def test_http_client_falls_back_to_per_endpoint_routes():
    server = ThreadingHTTPServer(('127.0.0.1', 0), _JinaLikeGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(port=server.server_address[1], protocol='http') as client:
            assert client.post('/', [Document(text='a'), Document(text='b')]).texts == ['A', 'B']
            assert client.post('/shout', Document(text='c')).texts == ['C!']
            many = client.post('/', [Document(text='x')] * 25, request_size=10)
            assert len(many) == 25
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    # /post was tried once; after the 404 every request went to its endpoint's route
    assert _JinaLikeGateway.seen.count('/post') == 1
    assert _JinaLikeGateway.seen.count('/default') == 4 and _JinaLikeGateway.seen.count('/shout') == 1
