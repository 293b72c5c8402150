"""I. What authentication costs: a one-executor Flow that checks a token, beside the same Flow
that does not, interleaved repetition by repetition. The clients send the token to both (from
$PLAIT_AUTH_TOKEN), so the difference is the gateway's check alone."""

from __future__ import annotations

import os

from common import Settings, guarded, section_main
from load import Plan, client_latency, client_throughput
from results import Section, Target
from stats import median, ms

TOKEN = 'bench-token-0123456789abcdef'
PROTOCOLS = ('grpc', 'http')


def _measure(section: Section, settings: Settings, protocol: str) -> None:
    from bench_executors import NoOp

    from plait import Flow
    from plait.auth import TOKEN_ENV

    plan = Plan.of(settings)
    latency = section.row(f'{protocol}: latency p50, 1 doc, token checked', 'ms', Target('ratio_max', 1.15),
                          note='floor: the same Flow without a token')
    throughput = section.row(f'{protocol}: throughput, {plan.clients} clients, token checked', 'req/s',
                             Target('ratio_min', 0.85), note='floor: the same Flow without a token')
    open_flow = Flow(protocol=protocol, quiet=True).add(uses=NoOp)  # built before the variable is set
    os.environ[TOKEN_ENV] = TOKEN  # what every Client below sends
    try:
        checked_flow = Flow(protocol=protocol, quiet=True, auth_token=TOKEN).add(uses=NoOp)
        with open_flow, checked_flow:
            pairs = [(open_flow, (latency.floor, throughput.floor)), (checked_flow, (latency.plait, throughput.plait))]
            for rep in range(settings.reps):
                for flow, values in pairs if rep % 2 == 0 else pairs[::-1]:  # neither always goes first
                    values[0].append(median(ms(client_latency(flow.port, protocol, plan.count, plan.warmup))))
                    values[1].append(client_throughput(flow.port, protocol, plan.clients, plan.seconds))
    finally:
        os.environ.pop(TOKEN_ENV, None)


def _executor_secret(section: Section, settings: Settings) -> None:
    """A Deployment of one replica checking a token itself (the interceptor every executor of a
    Flow runs for its secret) beside the same replica open."""
    from bench_executors import NoOp

    from plait import Deployment
    from plait.auth import TOKEN_ENV

    plan = Plan.of(settings)
    row = section.row('executor: latency p50, 1 doc, token checked by the replica', 'ms', Target('ratio_max', 1.15),
                      note='floor: the same replica without a token')
    open_dep = Deployment(uses=NoOp, quiet=True)
    os.environ[TOKEN_ENV] = TOKEN
    try:
        checked_dep = Deployment(uses=NoOp, quiet=True, auth_token=TOKEN)
        with open_dep, checked_dep:
            pairs = [(open_dep, row.floor), (checked_dep, row.plait)]
            for rep in range(settings.reps):
                for dep, values in pairs if rep % 2 == 0 else pairs[::-1]:
                    values.append(median(ms(client_latency(dep.port, 'grpc', plan.count, plan.warmup))))
    finally:
        os.environ.pop(TOKEN_ENV, None)


def new_section() -> Section:
    return Section('auth', 'I. Authentication: what checking a token costs', notes=[
        ('A one-executor Flow (no-op Executor) with `auth_token=...` beside the same Flow without one, '
         'interleaved per repetition (which goes first alternates); every client sends the token to both, '
         'so the floor column is the same traffic without the check. The executor row is a lone replica '
         'checking the token itself '
         '(the gRPC interceptor every executor of a Flow runs for the secret its gateway sends; the '
         'gateway opens one stream per replica, so that check runs once per stream there).'),
        'Targets: the check costs at most 15% latency and keeps at least 85% of the throughput.',
    ])


def measure(section: Section, settings: Settings) -> None:
    for protocol in PROTOCOLS:
        guarded(section, protocol, lambda p=protocol: _measure(section, settings, p))
    guarded(section, 'executor', lambda: _executor_secret(section, settings))


if __name__ == '__main__':
    section_main(new_section, measure)
