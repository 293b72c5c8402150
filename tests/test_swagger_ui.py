"""OpenAPI and Swagger UI of the HTTP gateway: request/response schemas from the executors'
document types, and `/docs` rendered by headless Chromium with every route shown and no
request leaving 127.0.0.1 (the Swagger UI assets are served by the gateway itself)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_http_gateway import Main, curl, curl_json

from plait import Flow

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ROUTES = ['/', '/livez', '/readyz', '/dry_run', '/status', '/post', '/foo', '/typed', '/index', '/search',
          '/update', '/delete']


@pytest.fixture(scope='module')
def flow():
    f = Flow(protocol='http', quiet=True, title='Test Flow', description='made by test_swagger_ui').add(uses=Main)
    f.expose_endpoint('/foo', summary='my endpoint', tags=['fine-tuning'], methods=['PUT'])
    f.expose_endpoint('/typed', summary='typed documents')
    with f:
        yield f


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while '$ref' in node:
        node = spec['components']['schemas'][node['$ref'].rsplit('/', 1)[-1]]
    return node


def test_openapi_schemas_come_from_the_executor_document_types(flow: Flow) -> None:
    code, spec = curl_json(f'http://127.0.0.1:{flow.port}/openapi.json')
    assert code == 200
    assert spec['info']['title'] == 'Test Flow' and spec['info']['description'] == 'made by test_swagger_ui'
    assert set(ROUTES) <= set(spec['paths'])

    typed = spec['paths']['/typed']['post']
    assert typed['summary'] == 'typed documents'
    body = typed['requestBody']['content']['application/json']['schema']
    doc = resolve(spec, body['properties']['data']['anyOf'][0]['items'])
    assert doc['required'] == ['title'] and {'title', 'n', 'vec'} <= set(doc['properties'])
    out = typed['responses']['200']['content']['application/json']['schema']['properties']['data']['items']
    assert resolve(spec, out)['title'] == 'MyDoc'
    assert set(typed['responses']) >= {'200', '404', '413', '422', '500', '503', '504'}

    foo = spec['paths']['/foo']['put']
    foo_doc = foo['requestBody']['content']['application/json']['schema']['properties']['data']['anyOf'][0]['items']
    assert 'text' in resolve(spec, foo_doc)['properties']  # DocumentArray endpoints take plait.Document

    post = spec['paths']['/post']['post']['requestBody']['content']['application/json']['schema']
    assert '/typed' in post['properties']['exec_endpoint']['examples']
    assert {'MyDoc', 'Document', 'Status', 'ErrorResponse'} <= set(spec['components']['schemas'])


def test_swagger_ui_page_and_assets_are_local(flow: Flow) -> None:
    base = f'http://127.0.0.1:{flow.port}'
    code, html = curl(f'{base}/docs')
    assert code == 200 and 'SwaggerUIBundle' in html
    urls = re.findall(r'''(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]''', html)
    assert urls and not [u for u in urls if re.match(r'(https?:)?//', u)], urls
    for url in urls:
        assert curl(base + url, '-o', '/dev/null')[0] == 200, url


@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium; '
                                             '`make test` installs it when run as root)')
def test_swagger_ui_renders_every_route_offline(flow: Flow, tmp_path: Path) -> None:
    netlog = tmp_path / 'netlog.json'
    args = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
            f'--user-data-dir={tmp_path / "profile"}', '--virtual-time-budget=20000',
            # any host but 127.0.0.1 fails to resolve: the page must not need the internet
            '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', f'--log-net-log={netlog}',
            '--dump-dom', f'http://127.0.0.1:{flow.port}/docs']
    done = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    shown = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert sorted(shown) == sorted(ROUTES), shown
    assert 'Test Flow' in dom and 'MyDoc' in dom and 'my endpoint' in dom

    # every request the page made (initiator = the page's origin) stayed on this server; the
    # browser's own background requests (updates, time) have no such initiator
    origin = f'http://127.0.0.1:{flow.port}'
    log = json.loads(netlog.read_text())
    page_requests = {event['params']['url'] for event in log['events']
                     if isinstance(event.get('params'), dict) and event['params'].get('initiator') == origin
                     and isinstance(event['params'].get('url'), str)}
    assert f'{origin}/openapi.json' in page_requests and f'{origin}/docs/static/swagger-ui-bundle.js' in page_requests
    assert all(url.startswith(origin + '/') for url in page_requests), page_requests
