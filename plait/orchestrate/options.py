"""The keywords Flow, Flow.add and Deployment accept, derived in one place from what
configures each process: the fields of WorkerConfig (what every Executor replica gets) and
GatewayConfig (what a gateway gets), plus the keyword parameters the Flow and Deployment
signatures name themselves. Adding a field to either config adds the option everywhere;
anything else is refused by name (plait.options.refuse_unknown)."""

from __future__ import annotations

from typing import Any

from plait.config import field_names
from plait.options import parameters_of
from plait.serve.gateway.config import DeploymentTarget, GatewayConfig
from plait.serve.worker_config import PER_PROCESS, WorkerConfig

# GatewayConfig fields a Flow or Deployment fills in itself, from its own keywords and graph
GATEWAY_GRAPH = ('protocols', 'ports', 'deployments')

# other spellings accepted for a gateway option: spelling -> GatewayConfig field
GATEWAY_ALIASES = {'expose_graphql_endpont': 'expose_graphql_endpoint'}  # as some published examples write it

WORKER_OPTIONS = frozenset(f for f in field_names(WorkerConfig) if f not in PER_PROCESS)
GATEWAY_OPTIONS = frozenset(f for f in field_names(GatewayConfig) if f not in GATEWAY_GRAPH) | set(GATEWAY_ALIASES)
# how a gateway routes to one deployment (its addresses are the Deployment's to fill in)
TARGET_OPTIONS = frozenset(f for f in field_names(DeploymentTarget) if f not in ('name', 'shards'))


def gateway_options(options: dict[str, Any]) -> dict[str, Any]:
    """The GatewayConfig fields among `options`, aliases resolved."""
    return {GATEWAY_ALIASES.get(k, k): v for k, v in options.items() if k in GATEWAY_OPTIONS}


def worker_options(options: dict[str, Any]) -> dict[str, Any]:
    """The WorkerConfig fields among `options`."""
    return {k: v for k, v in options.items() if k in WORKER_OPTIONS}


def target_options(options: dict[str, Any]) -> dict[str, Any]:
    """The DeploymentTarget fields among `options`."""
    return {k: v for k, v in options.items() if k in TARGET_OPTIONS}


def deployment_options() -> frozenset[str]:
    """Every keyword `Deployment(...)` honours."""
    from plait.orchestrate.deployment import Deployment

    return parameters_of(Deployment.__init__) | WORKER_OPTIONS | TARGET_OPTIONS | GATEWAY_OPTIONS


def add_options() -> frozenset[str]:
    """Every keyword `Flow.add(...)` honours: a Deployment's, but the Flow's gateway is the one
    clients talk to, so its options (and `protocol`, `auth_token`) are given to `Flow(...)` instead."""
    from plait.orchestrate.deployment import Deployment

    return (parameters_of(Deployment.__init__) - {'protocol', 'auth_token'}) | WORKER_OPTIONS | TARGET_OPTIONS


def flow_options() -> frozenset[str]:
    """Every keyword `Flow(...)` honours."""
    from plait.orchestrate.flow import Flow

    return parameters_of(Flow.__init__) | GATEWAY_OPTIONS
