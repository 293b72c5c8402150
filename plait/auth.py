"""Bearer-token authentication, the same on every face of a gateway and on executors.

Tokens come from an option (a string, or a list while rotating), the environment
(`PLAIT_AUTH_TOKEN`, several separated by commas) or a file (`PLAIT_AUTH_TOKEN_FILE`,
`--auth-token-file`: one token per line, e.g. a mounted Kubernetes Secret). Callers send
`authorization: Bearer <token>` (gRPC metadata, the HTTP header, the WebSocket handshake);
tokens are compared in constant time. Health probes stay open.

Executors of a Flow share an internal secret with their gateway (`PLAIT_EXECUTOR_SECRET`),
so a raw call to an executor port that does not come through the gateway is refused.

Nothing here runs when no token is configured: the interceptor and the middleware are only
installed when there is one. Imports only the standard library at module level."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from plait.errors import BadConfig

TOKEN_ENV = 'PLAIT_AUTH_TOKEN'
TOKEN_FILE_ENV = 'PLAIT_AUTH_TOKEN_FILE'
EXECUTOR_SECRET_ENV = 'PLAIT_EXECUTOR_SECRET'
# a child process gets these only when its parent gives them explicitly (never by inheritance)
SECRET_ENVS = (TOKEN_ENV, TOKEN_FILE_ENV, EXECUTOR_SECRET_ENV)

HEADER = 'authorization'
SCHEME = 'bearer'
# what a caller is told: never which part of what it sent was wrong
REQUIRED = 'a valid token is required: send "authorization: Bearer <token>"'
FIRST_MESSAGE_WAIT = 1.0  # seconds a refused streaming call may take to send its first message

# RFC 6750 b64token: what a Bearer token may contain (safe in HTTP headers and gRPC metadata)
_TOKEN_SYNTAX = re.compile(r'[A-Za-z0-9\-._~+/]+=*')

# gRPC methods anyone may call: health (liveness, readiness) for probes and load balancers,
# and reflection, which only describes the public protocol (grpcurl needs it to name methods)
OPEN_GRPC_METHODS = frozenset({
    '/grpc.health.v1.Health/Check',
    '/grpc.health.v1.Health/Watch',
    '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
    '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
})
OPEN_HTTP_PATHS = frozenset({'/', '/livez', '/readyz'})
DOCS_HTTP_PATHS = frozenset({'/docs', '/openapi.json'})
DOCS_HTTP_PREFIX = '/docs/static/'

TokenOption = Union[str, Sequence[str], None]


class AuthConfigError(BadConfig):
    """A token or token file is unusable. The message never contains a token."""


def _checked(tokens: Iterable[str], where: str) -> tuple[str, ...]:
    result = []
    for token in tokens:
        if not isinstance(token, str):
            raise AuthConfigError(f'{where}: a token must be a string, got {type(token).__name__}')
        token = token.strip()
        if not token:
            continue
        if not _TOKEN_SYNTAX.fullmatch(token):
            raise AuthConfigError(f'{where}: a token may contain only letters, digits and - . _ ~ + / '
                                  f'(with = at the end), as a Bearer token must')
        result.append(token)
    return tuple(dict.fromkeys(result))


def _split(text: str) -> list[str]:
    return re.split(r'[\s,]+', text)


def read_token_file(path: str, where: str = 'auth_token_file') -> tuple[str, ...]:
    """The tokens of a file, one per line (blank lines ignored); refused when none."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise AuthConfigError(f'{where}: cannot read {path!r}: {e.strerror}') from None
    tokens = _checked(_split(text), f'{where} {path!r}')
    if not tokens:
        raise AuthConfigError(f'{where}: {path!r} holds no token')
    return tokens


def load_tokens(option: TokenOption = None, token_file: Optional[str] = None,
                env: Optional[Mapping[str, str]] = None) -> tuple[str, ...]:
    """The tokens a server accepts, from the first source given: `option` (a string or a
    list), `token_file`, `$PLAIT_AUTH_TOKEN`, `$PLAIT_AUTH_TOKEN_FILE`. Empty: no auth."""
    env = os.environ if env is None else env
    if option is not None and option != [] and option != ():
        values = [option] if isinstance(option, str) else list(option)
        tokens = _checked(values, 'auth_token')
        if not tokens:
            raise AuthConfigError('auth_token: empty; give a token, or leave the option out to serve without one')
        return tokens
    if token_file:
        return read_token_file(token_file)
    if env.get(TOKEN_ENV, '').strip():
        return _checked(_split(env[TOKEN_ENV]), TOKEN_ENV)
    if env.get(TOKEN_FILE_ENV):
        return read_token_file(env[TOKEN_FILE_ENV], TOKEN_FILE_ENV)
    return ()


def client_token(option: Optional[str] = None, token_file: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The token a client sends: `option`, else the first of `token_file` or the environment."""
    if option is not None and not isinstance(option, str):
        raise AuthConfigError('auth_token: a client sends one token (a string)')
    tokens = load_tokens(option, token_file, env)
    return tokens[0] if tokens else None


def as_env(tokens: Sequence[str]) -> str:
    """Tokens as `$PLAIT_AUTH_TOKEN` holds them."""
    return ','.join(tokens)


def new_secret() -> str:
    """An internal secret for a gateway and its executors."""
    import secrets

    return secrets.token_urlsafe(32)


def executor_secret(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    env = os.environ if env is None else env
    return env.get(EXECUTOR_SECRET_ENV) or None


def bearer(token: str) -> str:
    return f'Bearer {token}'


def credentials_metadata(token: Optional[str]) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that carries `token` (nothing without one)."""
    return ((HEADER, bearer(token)),) if token else ()


class TokenCheck:
    """Accepts an `authorization` value carrying one of `tokens`, in constant time: every
    token is compared, whether or not an earlier one matched."""

    def __init__(self, tokens: Sequence[str]):
        if not tokens:
            raise ValueError('TokenCheck needs at least one token')
        self._tokens = [t.encode() for t in tokens]

    def __repr__(self) -> str:  # never shows the tokens
        return f'TokenCheck({len(self._tokens)} token(s))'

    def replace(self, tokens: Sequence[str]) -> None:
        """Accept `tokens` from now on (a rotation read from the token file)."""
        if tokens:
            self._tokens = [t.encode() for t in tokens]

    def accepts(self, authorization: Union[str, bytes, None]) -> bool:
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode('latin-1', 'replace')
        scheme, _, token = authorization.strip().partition(b' ')
        token = token.strip()
        found = False
        for known in self._tokens:
            found |= hmac.compare_digest(known, token)
        return found and scheme.lower() == SCHEME.encode()


def token_file_in_use(token_file: Optional[str], env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The file `load_tokens(None, token_file)` reads, if it reads one."""
    env = os.environ if env is None else env
    if token_file:
        return token_file
    return None if env.get(TOKEN_ENV, '').strip() else env.get(TOKEN_FILE_ENV) or None


async def follow_token_file(path: str, check: TokenCheck, logger: logging.Logger, interval: float = 2.0) -> None:
    """Re-read `path` every `interval` s and accept what it holds then (a Kubernetes Secret
    mounted as a file is updated in place when rotated). An unreadable or empty file keeps
    the tokens accepted so far."""
    import asyncio

    last = read_token_file(path)
    while True:
        await asyncio.sleep(interval)
        try:
            tokens = read_token_file(path)
        except AuthConfigError as e:
            logger.warning('keeping the tokens accepted so far: %s', e)
            continue
        if tokens != last:
            check.replace(tokens)
            last = tokens
            logger.info('accepting %d token(s) read anew from %s', len(tokens), path)


# -- gRPC -------------------------------------------------------------------------------------
def grpc_interceptor(check: TokenCheck, open_methods: frozenset[str] = OPEN_GRPC_METHODS) -> Any:
    """A grpc.aio server interceptor: calls without a valid token end UNAUTHENTICATED,
    except `open_methods`."""
    import grpc

    async def deny(request: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REQUIRED)

    async def deny_stream(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REQUIRED)
        yield  # pragma: no cover (abort raises)

    async def first_message(requests: Any) -> None:
        """Take the caller's first message (briefly) before refusing a call that streams in: a
        refusal that overtakes it fails the caller's send with INTERNAL, not UNAUTHENTICATED."""
        async def take() -> None:
            async for _ in requests:
                return
        try:
            await asyncio.wait_for(take(), FIRST_MESSAGE_WAIT)
        except Exception:  # noqa: BLE001  (a timeout, a broken stream: refused either way)
            pass

    async def deny_in(requests: Any, context: Any) -> None:
        await first_message(requests)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REQUIRED)

    async def deny_in_stream(requests: Any, context: Any) -> Any:
        await first_message(requests)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REQUIRED)
        yield  # pragma: no cover (abort raises)

    denials = {
        (False, False): grpc.unary_unary_rpc_method_handler(deny),
        (False, True): grpc.unary_stream_rpc_method_handler(deny_stream),
        (True, False): grpc.stream_unary_rpc_method_handler(deny_in),
        (True, True): grpc.stream_stream_rpc_method_handler(deny_in_stream),
    }

    class TokenInterceptor(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            if handler is None or details.method in open_methods:
                return handler
            for key, value in details.invocation_metadata or ():
                if key == HEADER and check.accepts(value):
                    return handler
            return denials[(handler.request_streaming, handler.response_streaming)]

    return TokenInterceptor()


# -- HTTP and WebSocket ----------------------------------------------------------------------
class TokenMiddleware:
    """ASGI middleware: HTTP requests without a valid token get 401 with `WWW-Authenticate:
    Bearer`; WebSocket handshakes without one are refused (401 where the server can send a
    response, else 403). `open_paths` (probes) pass; `docs_public` opens the API docs too."""

    def __init__(self, app: Any, check: TokenCheck, open_paths: frozenset[str] = OPEN_HTTP_PATHS,
                 docs_public: bool = False):
        self.app = app
        self.check = check
        self.open_paths = open_paths | (DOCS_HTTP_PATHS if docs_public else frozenset())
        self.docs_public = docs_public

    def _open(self, scope: dict[str, Any]) -> bool:
        path = scope.get('path', '')
        return scope['type'] == 'http' and (path in self.open_paths or (
            self.docs_public and path.startswith(DOCS_HTTP_PREFIX)))

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for key, value in scope.get('headers') or ():
            if key == b'authorization':
                return self.check.accepts(value)
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope['type'] not in ('http', 'websocket') or self._open(scope) or self._authorized(scope):
            await self.app(scope, receive, send)
        elif scope['type'] == 'http':
            await _send_401(send)
        else:
            await _refuse_websocket(scope, receive, send)


_BODY = b'{"detail":"' + REQUIRED.replace('"', '\\"').encode() + b'"}'
_HEADERS = [(b'content-type', b'application/json'), (b'content-length', str(len(_BODY)).encode()),
            (b'www-authenticate', b'Bearer')]


async def _send_401(send: Any, prefix: str = 'http') -> None:
    await send({'type': f'{prefix}.response.start', 'status': 401, 'headers': _HEADERS})
    await send({'type': f'{prefix}.response.body', 'body': _BODY})


async def _refuse_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()  # websocket.connect
    if message.get('type') != 'websocket.connect':
        return
    if 'websocket.http.response' in (scope.get('extensions') or {}):
        await _send_401(send, 'websocket.http')
    else:
        await send({'type': 'websocket.close', 'code': 1008, 'reason': 'token required'})


# -- logs ------------------------------------------------------------------------------------
class RedactAuthorization(logging.Filter):
    """Replaces the value of any `authorization` header in a log record (servers that log
    request headers at DEBUG, such as uvicorn's WebSocket handshake)."""

    _pattern = re.compile(r'(authorization[\'"]?\s*[:=,]\s*(?:b(?=[\'"]))?[\'"]?)[^\r\n\'"]+', re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if 'uthorization' in message or 'UTHORIZATION' in message:
            record.msg, record.args = self._pattern.sub(r'\1[redacted]', message), ()
        return True


def redact_logs(*names: str) -> None:
    """Install RedactAuthorization on the loggers `names` (once each)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAuthorization) for f in logger.filters):
            logger.addFilter(RedactAuthorization())


# -- warnings ----------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    import ipaddress

    if host in ('localhost', ''):
        return host == 'localhost'
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_warned: set[str] = set()


def warn_if_plaintext(host: str, tls: bool, logger: logging.Logger) -> None:
    """Tokens sent in clear over a network: one warning per process (per address)."""
    if tls or is_loopback(host) or host in _warned:
        return
    _warned.add(host)
    logger.warning('tokens are checked on %s without TLS: anyone on the network path can read them; '
                   'give ssl_certfile and ssl_keyfile', host)
