"""Every error plait raises, in one tree:

    PlaitError
    ├── BadConfig                 a Flow/Deployment/Executor option or YAML file is wrong
    │   ├── UsesNotFound          `uses=` names nothing importable
    │   ├── UnknownOption         a keyword plait does not honour (a typo, or a Jina option not supported)
    │   └── AuthConfigError       (plait.auth) a token or token file is unusable
    ├── RuntimeFailedToStart      a process did not become ready (crashed, timed out, port in use)
    ├── InternalNetworkError      a deployment could not be reached (names it and its addresses)
    │   └── SendError             (gateway) every replica of a deployment failed a call; has the gRPC code
    ├── RequestTimeout            a request took longer than its timeout
    ├── BadRequest                the request itself is wrong (unknown endpoint, documents of the wrong shape)
    │   └── MalformedRequest      it cannot even be read (not JSON, not protobuf, an invalid regex)
    ├── ExecutorError             user code raised; carries the remote name, args and stack
    ├── Unauthenticated           the server wants a token (auth_token) and got none, or a wrong one
    └── ProbeFailed               (plait ping) the server did not answer, or not healthy

Internal signals, each caught in the module that raises it, never reach users:
`documents._NeedsDocarray`, `serve.gateway.mux.Busy`, `serve.gateway.http_limits.BodyTooLarge`,
`serve.gateway.graph.RoutingFailure` (becomes an Outcome), `serve.gateway.grpc_gateway._Abort`.
`orchestrate.group.Terminated` (SIGTERM inside `with Flow()`) is a KeyboardInterrupt, not an error;
`streams._Stop` (a stream leaving its TaskGroup early) a BaseException, like GeneratorExit.

Each message says what failed, where, and what to do about it.
"""

from __future__ import annotations

from typing import Optional, Sequence


class PlaitError(Exception):
    """Base of every plait error."""


class BadConfig(PlaitError, ValueError):
    """An option, YAML document or `uses` value is wrong."""


class UsesNotFound(BadConfig):
    """`uses=` names a class, module or file that cannot be loaded."""


class UnknownOption(BadConfig, TypeError):
    """A keyword or YAML key plait does not honour: refused at once, by name, never ignored."""

    def __init__(self, message: str, options: Sequence[str] = ()):
        super().__init__(message)
        self.options = list(options)


class RuntimeFailedToStart(PlaitError, RuntimeError):
    """A microservice process exited or timed out before it was ready."""


class InternalNetworkError(PlaitError, ConnectionError):
    """A deployment could not be reached from the gateway or client."""

    def __init__(self, message: str, deployment: str = '', addresses: Sequence[str] = ()):
        super().__init__(message)
        self.deployment = deployment
        self.addresses = tuple(addresses)


class RequestTimeout(PlaitError, TimeoutError, ConnectionError):
    """A request did not complete within its timeout (a ConnectionError too, as Jina's clients
    raise for a deadline)."""


class BadRequest(PlaitError, ValueError):
    """The request cannot be served as sent (unknown endpoint, documents of the wrong shape...);
    the message names the field."""


class MalformedRequest(BadRequest):
    """The request cannot be read at all (not JSON, not protobuf, an invalid regular expression)."""


class ExecutorError(PlaitError):
    """An Executor raised while serving a request; the remote details are kept."""

    def __init__(self, message: str, name: str = '', args: Sequence[str] = (),
                 stacks: Sequence[str] = (), executor: Optional[str] = None):
        super().__init__(message)
        self.name = name
        self.remote_args = list(args)
        self.stacks = list(stacks)
        self.executor = executor or ''

    def __str__(self) -> str:
        where = f' in executor {self.executor}' if self.executor else ''
        return f'{self.name}{where}: {super().__str__()}'


class Unauthenticated(PlaitError, PermissionError):
    """The server refused the call: it needs a token (`auth_token=`, $PLAIT_AUTH_TOKEN) and
    got none or another one."""

    def __init__(self, where: str):
        super().__init__(f'{where} refused the call: a valid token is required; give the Client '
                         f'auth_token=... (or set $PLAIT_AUTH_TOKEN)')


class ProbeFailed(PlaitError):
    """A probe (`plait ping`, `plait dryrun`) got no answer in time, or not a healthy one."""
