"""The gRPC scenarios of the seed documents, as written: a Flow started from a script and
blocked, health of the executor (12346) and the gateway (12345) with grpcurl, readiness,
dry_run before and after `kill -9` of the executor, `_status`; and the seed snippets that
print True then False. (Unlike Jina, a Flow restarts a killed executor: the seed's "down"
answers are checked right after the kill, and again, lasting, with restarts off.)"""

from __future__ import annotations

import re
import signal
import time

import pytest
from flow_helpers import Script, alive, grpcurl, grpcurl_json, kill9, run_script, wait_until

from plait import Client, Deployment, Flow

GATEWAY = '127.0.0.1:12345'
EXECUTOR = '127.0.0.1:12346'
HEALTH = 'grpc.health.v1.Health/Check'
DRY_RUN = 'jina.JinaGatewayDryRunRPC/dry_run'
STATUS = 'jina.JinaInfoRPC/_status'
DOWN_DESCRIPTION = ("failed to connect to all addresses |Gateway: Communication error with deployment executor0 "
                    "at address(es) {'127.0.0.1:12346'}. Head or worker(s) may be down.")

# seed 000/001/002: the Flow a user starts in one terminal (log level DEBUG shows the pids)
SEED_FLOW = """
from plait import Flow
import os

PROTOCOL = 'grpc'  # it could also be http or websocket

os.environ['PLAIT_LOG_LEVEL'] = 'DEBUG'  # this way we can check what is the PID of the Executor

with Flow(protocol=PROTOCOL, port=12345).add(port=12346) as f:
    f.block()
"""


@pytest.fixture
def seed_flow():
    script = Script(SEED_FLOW)
    try:
        script.wait_for_line('is ready to serve', timeout=90)
        yield script
    finally:
        script.close()


def pid_in_logs(script: Script, label: str) -> int:
    line = script.wait_for_line(f'{label}@', timeout=5)
    return int(re.search(rf'{re.escape(label)}@(\d+)', line).group(1))


def test_seed_grpc_flow_health_readiness_dry_run_status_and_kill(seed_flow: Script) -> None:
    executor_pid = pid_in_logs(seed_flow, 'executor0/rep-0')
    gateway_pid = pid_in_logs(seed_flow, 'gateway/rep-0')

    # health of each microservice, exactly the seed's commands
    assert grpcurl_json(EXECUTOR, HEALTH) == {'status': 'SERVING'}
    assert grpcurl_json(GATEWAY, HEALTH) == {'status': 'SERVING'}
    assert grpcurl_json(GATEWAY, HEALTH, {'service': 'readiness'}) == {'status': 'SERVING'}

    # dry_run through the whole Flow: the error-free output is an empty status
    assert grpcurl_json(GATEWAY, DRY_RUN) == {}

    # _status on the gateway (and on the executor, as the seed's tip says)
    info = grpcurl_json(GATEWAY, STATUS)
    for key in ('plait', 'docarray', 'grpcio', 'protobuf', 'python', 'platform', 'uptime', 'session-id'):
        assert info['jina'].get(key), f'_status lacks {key}: {info["jina"]}'
    assert info['envs']['PLAIT_LOG_LEVEL'] == 'DEBUG'
    assert info['envs']['PLAIT_GRPC_RECV_BYTES'] == '(unset)'
    assert 'PLAIT_READY_FD' not in info['envs'] and 'PLAIT_PARENT_PID' not in info['envs']
    assert all(k.startswith('PLAIT_') and v for k, v in info['envs'].items())
    # an executor of a Flow answers data and _status only to its gateway (health stays open)
    refused = grpcurl(EXECUTOR, STATUS)
    assert refused.returncode != 0 and 'Unauthenticated' in refused.stderr, refused

    client = Client(port=12345)
    try:
        assert client.is_flow_ready() is True
        assert client.dry_run() is True

        kill9(executor_pid)  # seed: kill -9 $EXECUTOR_PID
        took = wait_until(lambda: not client.is_flow_ready(timeout=1), timeout=1.0)
        assert took is not None, 'the Flow still reported ready 1 s after its executor was killed'
        print(f'readiness turned False {took * 1000:.0f} ms after kill -9')
        # the seed's check, at once: the Flow restarts a killed executor within a second or so
        assert_down_body(grpcurl_json(GATEWAY, DRY_RUN))

        # ...after which the same check passes again, with nothing done by hand
        assert wait_until(lambda: grpcurl_json(GATEWAY, DRY_RUN) == {}, timeout=30, interval=0.2) is not None
        assert grpcurl_json(EXECUTOR, HEALTH) == {'status': 'SERVING'}

        # f.block() returns on SIGTERM and the whole Flow goes away
        assert seed_flow.stop(signal.SIGTERM) == 0
        assert wait_until(lambda: not alive(gateway_pid), timeout=5) is not None

        start = time.monotonic()
        assert client.is_flow_ready() is False
        assert client.dry_run() is False
        print(f'is_flow_ready + dry_run with nothing listening: {(time.monotonic() - start) * 1000:.0f} ms')
    finally:
        client.close()


def assert_down_body(failure: dict) -> None:
    """The seed's dry_run answer while executor0 at 127.0.0.1:12346 is down."""
    assert failure['code'] == 'ERROR'
    assert failure['description'] == DOWN_DESCRIPTION
    assert failure['exception']['name'] == 'InternalNetworkError'
    assert failure['exception']['args'] == [DOWN_DESCRIPTION]
    stacks = failure['exception']['stacks']
    assert stacks and stacks[0].startswith('Traceback') and DOWN_DESCRIPTION in stacks[-1], stacks
    assert stacks[-1].startswith('plait.errors.InternalNetworkError: '), stacks[-1]


def test_seed_checks_while_the_killed_executor_stays_down() -> None:
    """The same Flow with restarts off, so the down state lasts: every readiness probe says so."""
    with Flow(protocol='grpc', port=12345, restart=False, quiet=True).add(port=12346) as f:
        client = Client(port=12345)
        try:
            assert (f.is_flow_ready(), f.dry_run(), client.is_flow_ready(), client.dry_run()) == (True,) * 4
            kill9(f.process_of('executor0/rep-0').pid)
            took = wait_until(lambda: not f.is_flow_ready(timeout=1), timeout=1.0)
            assert took is not None, 'the Flow still reported ready 1 s after its executor was killed'
            assert (f.dry_run(), client.is_flow_ready(), client.dry_run()) == (False,) * 3
            assert grpcurl_json(GATEWAY, HEALTH, {'service': 'readiness'}) == {'status': 'NOT_SERVING'}
            assert grpcurl_json(GATEWAY, HEALTH) == {'status': 'SERVING'}  # the gateway itself is alive
            assert grpcurl(EXECUTOR, HEALTH).returncode != 0
            assert_down_body(grpcurl_json(GATEWAY, DRY_RUN))
            assert_down_body(grpcurl_json(GATEWAY, DRY_RUN))  # and again: the answer is stable
        finally:
            client.close()
    assert (f.is_flow_ready(), f.dry_run()) == (False, False)


SNIPPETS = {
    'flow_is_flow_ready': """
        from plait import Flow

        with Flow().add() as f:
            print(f.is_flow_ready())

        print(f.is_flow_ready())
        """,
    'flow_dry_run': """
        from plait import Flow

        with Flow().add() as f:
            print(f.dry_run())

        print(f.dry_run())
        """,
    'deployment_is_deployment_ready': """
        from plait import Deployment

        dep = Deployment()

        with dep:
            print(dep.is_deployment_ready())

        print(dep.is_deployment_ready())
        """,
}


@pytest.mark.parametrize('name', sorted(SNIPPETS))
def test_seed_snippet_prints_true_then_false(name: str) -> None:
    done = run_script(SNIPPETS[name])
    assert done.returncode == 0, done.stdout + done.stderr
    answers = [line.strip() for line in done.stdout.splitlines() if line.strip() in ('True', 'False')]
    assert answers == ['True', 'False'], done.stdout + done.stderr


def test_seed_client_is_deployment_ready(port: int) -> None:
    with Deployment(port=port, quiet=True), Client(port=port) as client:
        assert client.is_deployment_ready() is True
    with Client(port=port) as client:
        assert client.is_deployment_ready() is False
