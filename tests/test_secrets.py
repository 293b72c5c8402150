"""No leaks of secrets: `_status` on a live Flow's gateway and executor (asked with grpcurl, as
an operator would, and with the Client) says whether secret-looking PLAIT_* variables are
set but never shows their values; other PLAIT_* values are shown, non-PLAIT variables not at all.
The same over the HTTP gateway's `GET /status`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flow_helpers import grpcurl

from plait import Client, Flow

SECRETS = {
    'PLAIT_API_TOKEN': 'tok-3f9a-never-shown',
    'PLAIT_DB_PASSWORD': 'pw-71c2-never-shown',
    'PLAIT_SIGNING_KEY': 'key-0b5e-never-shown',
    'PLAIT_CLIENT_SECRET': 'sec-9d44-never-shown',
}
PLAIN = {'PLAIT_REGION': 'eu-west-7'}
FOREIGN = {'AWS_SECRET_ACCESS_KEY': 'aws-5e1d-never-shown'}


# executors of a Flow answer only their gateway, which sends them the Flow's secret (plait.auth)
EXECUTOR_SECRET = 'flow-secret-2b81-never-shown'
TOKENS = {'gateway': None, 'executor': EXECUTOR_SECRET}


@pytest.fixture(scope='module')
def addresses() -> Iterator[dict[str, str]]:
    mp = pytest.MonkeyPatch()
    mp.setenv('PLAIT_EXECUTOR_SECRET', EXECUTOR_SECRET)
    try:
        with Flow(quiet=True, protocol=['grpc', 'http'], env={**SECRETS, **PLAIN, **FOREIGN}).add() as f:
            yield {'gateway': f'127.0.0.1:{f.ports[0]}', 'http': f'127.0.0.1:{f.ports[1]}',
                   'executor': f'127.0.0.1:{f.deployments["executor0"].worker_ports[0][0]}'}
    finally:
        mp.undo()


def _check(envs: dict[str, str], raw: str) -> None:
    for name, value in SECRETS.items():
        assert envs[name] == '(set, redacted)', (name, envs.get(name))
        assert value not in raw
    assert envs['PLAIT_REGION'] == 'eu-west-7'
    assert EXECUTOR_SECRET not in raw
    assert 'AWS_SECRET_ACCESS_KEY' not in envs and FOREIGN['AWS_SECRET_ACCESS_KEY'] not in raw


@pytest.mark.parametrize('target', ['gateway', 'executor'])
def test_status_over_grpcurl_redacts_secrets(addresses: dict[str, str], target: str) -> None:
    token = TOKENS[target]
    done = grpcurl(addresses[target], 'jina.JinaInfoRPC/_status',
                   headers=(f'authorization: Bearer {token}',) if token else ())
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info['jina']['plait']
    _check(info['envs'], done.stdout + done.stderr)


@pytest.mark.parametrize('target', ['gateway', 'executor'])
def test_status_through_the_client_redacts_secrets(addresses: dict[str, str], target: str) -> None:
    host, port = addresses[target].rsplit(':', 1)
    with Client(host=host, port=int(port), auth_token=TOKENS[target]) as client:
        info = client.status()
    _check(info['envs'], json.dumps(info))


def test_http_status_redacts_secrets(addresses: dict[str, str]) -> None:
    import httpx

    answer = httpx.get(f'http://{addresses["http"]}/status', timeout=10)
    assert answer.status_code == 200
    _check(answer.json()['envs'], answer.text)
