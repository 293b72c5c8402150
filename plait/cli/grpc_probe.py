"""gRPC probes over one sync channel: health, readiness (with fallbacks), dry_run and _status.

Methods are called by path with explicit (de)serialisers, so no generated stub module (and
nothing that needs docarray) is imported.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from plait.cli.target import Deadline, ProbeFailed, Target
from plait.proto import jina_common_pb2

HEALTH_CHECK = '/grpc.health.v1.Health/Check'
DRY_RUN = '/jina.JinaGatewayDryRunRPC/dry_run'
STATUS = '/jina.JinaInfoRPC/_status'
SERVING = health_pb2.HealthCheckResponse.SERVING
# Answers meaning "this server does not offer that service" (not "it is unwell").
MISSING = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED)


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    """The status code of a failed call, if the error carries one."""
    return error.code() if isinstance(error, grpc.Call) else None


def _read_ca(path: str) -> bytes:
    """The PEM bytes of a CA bundle, or a clear ProbeFailed."""
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise ProbeFailed(f'cannot read TLS CA file {path!r}: {e.strerror}') from None


class GrpcProbe:
    """Probes one gRPC server (executor or gateway) over a fresh channel."""

    def __init__(self, target: Target, tls_ca: str | None = None, token: str | None = None) -> None:
        self._metadata = (('authorization', f'Bearer {token}'),) if token else None
        # A probe talks to the server directly, never through an http_proxy from the environment.
        options = [('grpc.enable_http_proxy', 0), ('grpc.enable_retries', 0)]
        if target.tls:
            credentials = grpc.ssl_channel_credentials(_read_ca(tls_ca) if tls_ca else None)
            self._channel = grpc.secure_channel(target.address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(target.address, options)

    def close(self) -> None:
        """Close the channel and its connection."""
        self._channel.close()

    def _call(self, method: str, request: Any, response_type: Any, deadline: Deadline) -> Any:
        """One unary call, bounded by what is left of the deadline."""
        rpc = self._channel.unary_unary(method, request_serializer=type(request).SerializeToString,
                                        response_deserializer=response_type.FromString)
        return rpc(request, timeout=deadline.remaining(), metadata=self._metadata)

    def _failure(self, error: grpc.RpcError, deadline: Deadline) -> ProbeFailed:
        """A readable ProbeFailed for a failed call."""
        code = _code(error)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and deadline.timeout_ms >= 0:
            return ProbeFailed(f'Error while getting response from grpc server: {deadline.expired()}')
        name = code.name if code else 'error'
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return ProbeFailed(f'Error while getting response from grpc server: {name}: {details}')

    def _expect_serving(self, service: str, deadline: Deadline) -> None:
        """Raise ProbeFailed unless health reports `service` SERVING (RpcError passes through)."""
        response = self._call(HEALTH_CHECK, health_pb2.HealthCheckRequest(service=service),
                              health_pb2.HealthCheckResponse, deadline)
        if response.status != SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            what = f'health of service {service!r}' if service else 'health'
            raise ProbeFailed(f'{what} is {name}')

    def _dry_run(self, deadline: Deadline) -> tuple[bool, str]:
        """Send a dry run through the Flow; (success, error description)."""
        status = self._call(DRY_RUN, empty_pb2.Empty(), jina_common_pb2.StatusProto, deadline)
        if status.code == jina_common_pb2.StatusProto.SUCCESS:
            return True, ''
        return False, status.description or status.exception.name or 'dry run failed'

    def check(self, kind: str, deadline: Deadline) -> None:
        """Liveness for executor/gateway; readiness (with fallbacks for Jina servers) for flow/deployment."""
        try:
            if kind in ('executor', 'gateway'):
                return self._expect_serving('', deadline)
            try:
                return self._expect_serving('readiness', deadline)
            except grpc.RpcError as e:
                if _code(e) not in MISSING:
                    raise
            if kind == 'deployment':  # a bare executor serving the Deployment
                return self._expect_serving('', deadline)
            try:
                ok, description = self._dry_run(deadline)  # a Jina gateway
            except grpc.RpcError as e:
                if _code(e) not in MISSING:
                    raise
                raise ProbeFailed('the server serves neither health service "readiness" nor '
                                  f'{DRY_RUN[1:]}: is it a Flow gateway?') from None
            if not ok:
                raise ProbeFailed(f'dry run failed: {description}')
        except grpc.RpcError as e:
            raise self._failure(e, deadline) from None

    def dry_run(self, deadline: Deadline) -> tuple[bool, str]:
        """`jina.JinaGatewayDryRunRPC/dry_run`: (success, error description)."""
        try:
            return self._dry_run(deadline)
        except grpc.RpcError as e:
            raise self._failure(e, deadline) from None

    def status(self, deadline: Deadline) -> dict[str, dict[str, Any]]:
        """`jina.JinaInfoRPC/_status` as {'jina': {...}, 'envs': {...}}."""
        try:
            info = self._call(STATUS, empty_pb2.Empty(), jina_common_pb2.JinaInfoProto, deadline)
        except grpc.RpcError as e:
            raise self._failure(e, deadline) from None
        return {'jina': dict(info.jina), 'envs': dict(info.envs)}
