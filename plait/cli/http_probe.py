"""HTTP probes (also for WebSocket gateways): `GET /`, `/readyz`, `/dry_run` and `/status`.

Uses http.client directly: light to import, and it never routes a probe through an
http_proxy from the environment.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from plait.cli.target import Deadline, ProbeFailed, Target

MAX_BODY = 1 << 20  # a health answer is small; never read an unbounded body
NO_ANSWER = 'Error while getting response from http server'


class HttpProbe:
    """Probes one HTTP(S) server; each request uses its own short-lived connection."""

    def __init__(self, target: Target, tls_ca: str | None = None, token: str | None = None) -> None:
        self._headers = {'Accept': 'application/json'}
        if token:
            self._headers['Authorization'] = f'Bearer {token}'
        self._target = target
        self._tls_ca = tls_ca

    def close(self) -> None:
        """Nothing stays open between requests."""

    def _connection(self, deadline: Deadline) -> http.client.HTTPConnection:
        """A new connection whose socket waits at most what is left of the deadline."""
        host, port, timeout = self._target.host, self._target.port, deadline.remaining()
        if not self._target.tls:
            return http.client.HTTPConnection(host, port, timeout=timeout)
        import ssl

        try:
            context = ssl.create_default_context(cafile=self._tls_ca)
        except OSError as e:
            raise ProbeFailed(f'cannot read TLS CA file {self._tls_ca!r}: {e.strerror}') from None
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)

    def get(self, path: str, deadline: Deadline) -> tuple[int, bytes]:
        """GET `path`; (status, body). Raise ProbeFailed when there is no answer in time."""
        connection = self._connection(deadline)
        try:
            connection.request('GET', self._target.path + path, headers=self._headers)
            if connection.sock is not None:
                connection.sock.settimeout(deadline.remaining())
            response = connection.getresponse()
            return response.status, response.read(MAX_BODY)
        except TimeoutError:
            raise ProbeFailed(f'{NO_ANSWER}: {deadline.expired()}') from None
        except (OSError, http.client.HTTPException) as e:
            raise ProbeFailed(f'{NO_ANSWER}: {e}') from None
        finally:
            connection.close()

    def _json(self, path: str, deadline: Deadline) -> Any:
        """GET `path` and decode its JSON body; ProbeFailed unless 200 with valid JSON."""
        status, body = self.get(path, deadline)
        if status != 200:
            raise ProbeFailed(f'GET {path} answered HTTP {status}: {_snippet(body)}')
        try:
            return json.loads(body)
        except ValueError:
            raise ProbeFailed(f'GET {path} answered invalid JSON: {_snippet(body)}') from None

    def check(self, kind: str, deadline: Deadline) -> None:
        """Liveness `GET /` for executor/gateway; readiness `/readyz` (else `/dry_run`) otherwise."""
        path = '/' if kind in ('executor', 'gateway') else '/readyz'
        status, body = self.get(path, deadline)
        if status == 200:
            return
        if path == '/' or status != 404:
            raise ProbeFailed(f'GET {path} answered HTTP {status}: {_snippet(body)}')
        ok, description = self.dry_run(deadline)  # a Jina gateway has no /readyz
        if not ok:
            raise ProbeFailed(f'dry run failed: {description}')

    def dry_run(self, deadline: Deadline) -> tuple[bool, str]:
        """`GET /dry_run` (always HTTP 200; the JSON `code` tells): (success, error description)."""
        answer = self._json('/dry_run', deadline)
        if not isinstance(answer, dict) or 'code' not in answer:
            raise ProbeFailed(f'GET /dry_run answered an unexpected body: {str(answer)[:300]}')
        if answer['code'] in (0, 'SUCCESS'):
            return True, ''
        exception = answer.get('exception')
        name = exception.get('name') if isinstance(exception, dict) else None
        return False, answer.get('description') or name or 'dry run failed'

    def status(self, deadline: Deadline) -> dict[str, dict[str, Any]]:
        """`GET /status` as {'jina': {...}, 'envs': {...}}."""
        answer = self._json('/status', deadline)
        if not isinstance(answer, dict):
            raise ProbeFailed(f'GET /status answered an unexpected body: {str(answer)[:300]}')
        return {'jina': dict(answer.get('jina') or {}), 'envs': dict(answer.get('envs') or {})}


def _snippet(body: bytes) -> str:
    """The start of a body, for an error message."""
    text = body[:300].decode('utf-8', 'replace').strip()
    return text + ('...' if len(body) > 300 else '') if text else '(empty body)'
