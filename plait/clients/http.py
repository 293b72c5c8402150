"""The HTTP transport: each request is a JSON `POST /post` (as Jina's HTTP client sends it),
at most `prefetch` in flight; probes are `GET /readyz` (falling back to `/dry_run` on gateways
without it), `GET /`, `GET /dry_run` and `GET /status`.

Documents travel as JSON (see plait.wire.json_codec): types that JSON cannot say
(tensor dtypes, ints beyond int32) come back as plain numbers and lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote

import httpx
from google.protobuf import json_format

from plait.errors import BadRequest, InternalNetworkError, RequestTimeout, Unauthenticated
from plait.proto import jina_data_pb2
from plait.streams import bounded_map
from plait.wire.constants import WIRE_DEFAULT_ENDPOINT
from plait.wire.json_codec import docs_json, json_doc_list_proto, status_from_json
from plait.wire.join import doc_list_in
from plait.wire.messages import error_status

Verify = bool | str | ssl.SSLContext
DataRequestProto = jina_data_pb2.DataRequestProto


def ssl_context(verify: Verify) -> ssl.SSLContext:
    """`verify`: True = the system's CAs, False = no check, a path = that CA file, or a context."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    except OSError as e:
        raise BadRequest(f'cannot read the TLS CA file {verify!r}: {e.strerror}') from None


def request_json(request: DataRequestProto) -> dict[str, Any]:
    """A DataRequestProto as the JSON body of `POST /post`."""
    doc_list = doc_list_in(request.data)
    header = json_format.MessageToDict(request.header, preserving_proto_field_name=True)
    return {
        'header': header,
        'parameters': json_format.MessageToDict(request.parameters) if request.parameters.fields else {},
        'data': docs_json(doc_list),
        'exec_endpoint': request.header.exec_endpoint or '/',
        'target_executor': request.header.target_executor,
    }


def endpoint_path(request: DataRequestProto) -> str:
    """The route a gateway that serves endpoints as routes uses: '/' is '/default'."""
    endpoint = request.header.exec_endpoint or '/'
    if endpoint == '/':
        return WIRE_DEFAULT_ENDPOINT
    return quote(endpoint if endpoint.startswith('/') else '/' + endpoint, safe='/')


def response_proto(body: dict[str, Any], request_id: str) -> DataRequestProto:
    """The DataRequestProto of a JSON answer (`{"header", "parameters", "routes", "data"}`)."""
    proto = DataRequestProto()
    header = body.get('header') if isinstance(body.get('header'), dict) else {}
    json_format.ParseDict({k: v for k, v in header.items() if k != 'status' and v is not None}, proto.header,
                          ignore_unknown_fields=True)
    if isinstance(header.get('status'), dict):
        proto.header.status.CopyFrom(status_from_json(header['status']))
    if isinstance(body.get('parameters'), dict):
        proto.parameters.update(body['parameters'])
    for route in body.get('routes') or []:
        if isinstance(route, dict):
            clean = {k: v for k, v in route.items() if k != 'status' and v is not None}
            added = proto.routes.add()
            json_format.ParseDict(clean, added, ignore_unknown_fields=True)
            if isinstance(route.get('status'), dict):
                added.status.CopyFrom(status_from_json(route['status']))
    data = body.get('data')
    if isinstance(data, dict) and isinstance(data.get('docs'), list):
        data = data['docs']
    if isinstance(data, list):
        proto.data.docs.CopyFrom(json_doc_list_proto(d for d in data if isinstance(d, dict)))
    else:
        proto.data.docs.SetInParent()
    proto.header.request_id = proto.header.request_id or request_id
    return proto


def _error_proto(request: DataRequestProto, description: str, name: str) -> DataRequestProto:
    failed = DataRequestProto()
    failed.header.CopyFrom(request.header)
    failed.header.status.CopyFrom(error_status(description, name=name))
    return failed


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    """(event, data parsed as JSON or None) of a Server-Sent Events stream."""
    event, data = 'message', []
    async for line in lines:
        if not line:
            if data or event != 'message':
                yield event, json.loads('\n'.join(data)) if data else None
            event, data = 'message', []
        elif line.startswith('event:'):
            event = line[6:].strip()
        elif line.startswith('data:'):
            data.append(line[5:].lstrip(' '))


class HttpTransport:
    def __init__(self, host: str, port: int, tls: bool = False, verify: Verify = True, token: str | None = None):
        self.base = f'{"https" if tls else "http"}://{host}:{port}'
        self._headers = {'Authorization': f'Bearer {token}'} if token else None
        self._tls = tls
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._per_endpoint_routes = False  # learnt on a gateway without /post (Jina, docarray v2)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            verify = ssl_context(self._verify) if self._tls else False
            # trust_env=False: a gateway address is never reached through a proxy from the environment
            self._client = httpx.AsyncClient(base_url=self.base, verify=verify, trust_env=False, headers=self._headers,
                                             timeout=httpx.Timeout(None),
                                             limits=httpx.Limits(max_keepalive_connections=20))
            self._loop = loop
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    def _translate(self, e: Exception) -> Exception:
        if isinstance(e, httpx.TimeoutException):
            return RequestTimeout(f'{self.base} did not answer in time ({type(e).__name__})')
        return InternalNetworkError(f'cannot reach {self.base}: {str(e) or type(e).__name__}', addresses=[self.base])

    async def _post_json(self, path: str, body: dict[str, Any], timeout: float | None,
                         extra: tuple = ()) -> httpx.Response:
        try:
            # httpx's timeout bounds each read; asyncio's bounds the whole answer (a server that
            # drips a byte at a time would otherwise hold the call forever)
            async with asyncio.timeout(timeout):
                return await self._http().post(path, json=body, timeout=timeout, headers=dict(extra) or None)
        except TimeoutError:
            raise RequestTimeout(f'{self.base}{path} did not answer within {timeout} s') from None
        except httpx.HTTPError as e:
            raise self._translate(e) from None

    async def _post(self, request: DataRequestProto, timeout: float | None, extra: tuple = ()) -> DataRequestProto:
        body = request_json(request)
        if self._per_endpoint_routes:
            answer = await self._post_json(endpoint_path(request), body, timeout, extra)
        else:
            answer = await self._post_json('/post', body, timeout, extra)
            if answer.status_code == 404:
                # Jina's docarray-v2 gateways serve each endpoint as its own route instead of /post
                retry = await self._post_json(endpoint_path(request), body, timeout, extra)
                if retry.status_code != 404:
                    self._per_endpoint_routes = True
                    answer = retry
        if answer.status_code == 401:
            raise Unauthenticated(self.base)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get('header'), dict) and 'status' in body['header'] \
                or answer.status_code == 200 and isinstance(body, dict):
            return response_proto(body, request.header.request_id)
        if answer.status_code == 404:
            raise BadRequest(f'{self.base}/post does not exist (HTTP 404): the gateway hides /post '
                             f'(no_debug_endpoints) or is not a plait/Jina gateway')
        text = answer.text[:500] if body is None else str(body)[:500]
        return _error_proto(request, f'{self.base}/post answered HTTP {answer.status_code}: {text}', 'HTTPError')

    async def send(self, requests: Iterable[DataRequestProto], prefetch: int, timeout: float | None,
                   results_in_order: bool, extra: tuple = ()) -> AsyncIterator[DataRequestProto]:
        """Answers to `requests` (taken lazily, at most `prefetch` in flight); `extra` (key,
        value) pairs go with every request as headers (trace context, the caller's headers)."""
        async def post(request: DataRequestProto) -> DataRequestProto:
            response = await self._post(request, timeout, extra)
            response.header.request_id = request.header.request_id
            return response

        async with contextlib.aclosing(bounded_map(requests, post, prefetch, results_in_order)) as responses:
            async for response in responses:
                yield response

    async def stream_doc(self, request: jina_data_pb2.SingleDocumentRequestProto, timeout: float | None,
                         extra: tuple = ()) -> AsyncIterator[jina_data_pb2.SingleDocumentRequestProto]:
        """The answers of a streaming endpoint, read from its Server-Sent Events (`GET /<endpoint>`
        with the document and parameters as the JSON body); closing this closes the connection."""
        from plait.clients.streaming import deadline_of, replies_of_events, stream_body, until

        path = '/' + (request.header.exec_endpoint.strip('/') or WIRE_DEFAULT_ENDPOINT.strip('/'))
        deadline = deadline_of(timeout)
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):
                    answer = await stack.enter_async_context(self._http().stream(
                        'GET', path, json=stream_body(request), timeout=timeout,
                        headers={'Accept': 'text/event-stream', **dict(extra)}))
                    if answer.status_code == 401:
                        raise Unauthenticated(self.base)
                    if answer.status_code != 200:
                        text = (await answer.aread()).decode(errors='replace')[:500]
                        raise BadRequest(f'{self.base}{path} answered HTTP {answer.status_code}: {text}')
                replies = replies_of_events(_sse_events(answer.aiter_lines()), request, self.base)
                async for reply in until(deadline, replies, f'{self.base}{path}'):
                    yield reply
        except TimeoutError:
            raise RequestTimeout(f'{self.base}{path} did not answer within {timeout} s') from None
        except httpx.HTTPError as e:
            raise self._translate(e) from None

    async def get(self, path: str, timeout: float) -> tuple[int, Any]:
        """(HTTP status, JSON body or None) within `timeout` in all; raises httpx errors or
        TimeoutError."""
        async with asyncio.timeout(timeout):
            answer = await self._http().get(path, timeout=timeout)
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, None

    async def is_ready(self, kind: str, timeout: float) -> bool:
        """'flow'/'deployment': GET /readyz == 200 (on gateways without it, dry_run);
        'gateway'/'executor': GET / == 200. Never raises."""
        try:
            async with asyncio.timeout(timeout):
                if kind in ('flow', 'deployment'):
                    status, _ = await self.get('/readyz', timeout)
                    if status == 404:
                        return await self.dry_run(timeout)
                    return status == 200
                return (await self.get('/', timeout))[0] == 200
        except Exception:  # noqa: BLE001  (a probe answers False, never raises)
            return False

    async def dry_run(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                status, body = await self.get('/dry_run', timeout)
            return status == 200 and isinstance(body, dict) and body.get('code') in (0, 'SUCCESS')
        except Exception:  # noqa: BLE001  (a probe answers False, never raises)
            return False

    async def status_info(self, timeout: float) -> dict[str, dict[str, str]]:
        try:
            status, body = await self.get('/status', timeout)
        except TimeoutError:
            raise RequestTimeout(f'{self.base}/status did not answer within {timeout} s') from None
        except httpx.HTTPError as e:
            raise self._translate(e) from None
        if status == 401:
            raise Unauthenticated(self.base)
        if status != 200 or not isinstance(body, dict):
            raise BadRequest(f'{self.base}/status answered HTTP {status}')
        return {'jina': dict(body.get('jina') or {}), 'envs': dict(body.get('envs') or {})}
