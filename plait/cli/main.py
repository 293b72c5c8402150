"""The `plait` command. `ping`, `dryrun` and `status` are implemented in this package; the
serving and orchestration subcommands are forwarded, with the rest of the argv, to the
modules that own them. Every subcommand imports its code lazily, so probes start fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

# subcommand -> (module, function taking the remaining argv, one-line help)
DELEGATES = {
    'executor': ('plait.serve.worker', 'main', 'serve one Executor replica over gRPC'),
    'gateway': ('plait.serve.gateway', 'main', 'serve a Gateway in front of running executors'),
    'flow': ('plait.orchestrate.cli', 'flow_main', 'start a Flow from a YAML file'),
    'deployment': ('plait.orchestrate.cli', 'deployment_main', 'start a Deployment from a YAML file'),
    'export': ('plait.orchestrate.export', 'cli_main', 'export a Flow to Kubernetes or docker-compose'),
}

EXAMPLES = """examples:
  plait ping flow grpc://localhost:12345 --attempts 3 --min-successful-attempts 2
  plait ping executor localhost:12346 --timeout 1000
  plait ping gateway http://localhost:8080
  plait ping deployment grpcs://my-host:443 --tls-ca ca.pem
  plait dryrun http://localhost:12345
  plait status grpc://localhost:12345
  plait executor --uses my_module:MyExecutor --port 12346
  plait gateway --help
  plait flow flow.yml
  plait deployment deployment.yml
  plait export kubernetes flow.yml k8s/
"""


def _timeout(text: str) -> int:
    """A --timeout value: positive milliseconds, or -1 for no limit."""
    value = int(text)
    if value <= 0 and value != -1:
        raise argparse.ArgumentTypeError('must be a positive number of milliseconds, or -1 for no limit')
    return value


def _positive(text: str) -> int:
    """A count of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1')
    return value


def _add_probe_options(parser: argparse.ArgumentParser) -> None:
    """The URL, --timeout and --tls-ca options shared by ping, dryrun and status."""
    parser.add_argument('url', help='grpc://, grpcs://, http://, https://, ws://, wss:// host:port, '
                                    'or bare host:port (gRPC)')
    parser.add_argument('--timeout', type=_timeout, default=3000,
                        help='milliseconds to wait for each answer; -1 waits forever (default: 3000)')
    parser.add_argument('--tls-ca', default=os.environ.get('PLAIT_TLS_CA'),
                        help='CA bundle (PEM) to verify a grpcs/https server, e.g. a self-signed one '
                             '(default: $PLAIT_TLS_CA, else the system CAs)')
    parser.add_argument('--auth-token', default=None,
                        help='token to send to a server that needs one (default: $PLAIT_AUTH_TOKEN)')
    parser.add_argument('--auth-token-file', default=None, metavar='FILE',
                        help='read the token from FILE (default: $PLAIT_AUTH_TOKEN_FILE)')


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `plait` and the subcommands implemented here."""
    from plait import __version__

    parser = argparse.ArgumentParser(prog='plait', epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description='Serve Executors as gRPC microservices, compose them into '
                                                 'Flows, and probe them.')
    parser.add_argument('--version', action='version', version=f'plait {__version__}')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')

    ping = commands.add_parser('ping', help='check that an executor/gateway is up or a flow/deployment ready',
                               epilog='example: plait ping flow grpc://localhost:12345 --attempts 3')
    ping.add_argument('kind', choices=('executor', 'gateway', 'flow', 'deployment'),
                      help='executor/gateway: alive (health); flow/deployment: ready to serve')
    _add_probe_options(ping)
    ping.add_argument('--attempts', type=_positive, default=1, help='rounds to try, 1 s apart (default: 1)')
    ping.add_argument('--min-successful-attempts', type=_positive, default=1,
                      help='successful rounds needed to exit 0 (default: 1)')

    dryrun = commands.add_parser('dryrun', help='send an empty request through a whole Flow',
                                 epilog='example: plait dryrun http://localhost:12345')
    _add_probe_options(dryrun)

    status = commands.add_parser('status', help="show a server's versions, platform and PLAIT_* environment",
                                 epilog='example: plait status grpc://localhost:12345')
    _add_probe_options(status)

    for name, (_module, _function, text) in DELEGATES.items():
        # Listed for --help only: main() forwards these before parsing (see _delegate).
        delegate = commands.add_parser(name, help=text, add_help=False,
                                       epilog=f'example: plait {name} --help')
        delegate.add_argument('args', nargs=argparse.REMAINDER)
    return parser


def _delegate(name: str, argv: list[str]) -> int:
    """Run a subcommand owned by another module with its own argv (it parses its own options)."""
    module_name, function_name, _ = DELEGATES[name]
    try:
        function: Callable[[list[str]], int | None] = getattr(importlib.import_module(module_name),
                                                                 function_name)
    except (ImportError, AttributeError) as e:
        print(f'plait {name}: not available ({e})', file=sys.stderr)
        return 1
    return int(function(argv) or 0)


def _token(args: argparse.Namespace) -> str | None:
    """--auth-token, --auth-token-file, else the environment; a bad file exits with its reason."""
    from plait.auth import AuthConfigError, client_token

    try:
        return client_token(args.auth_token, args.auth_token_file)
    except AuthConfigError as e:
        raise SystemExit(f'plait {args.command}: error: {e}') from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `plait` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATES:
            return _delegate(argv[0], argv[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
            if args.command == 'ping' and args.min_successful_attempts > args.attempts:
                parser.error('--min-successful-attempts cannot exceed --attempts')
        except SystemExit as e:  # --help, --version, usage errors
            return e.code if isinstance(e.code, int) else 2
        # Keep gRPC C-core's own log lines (e.g. TLS handshake details) out of probe output;
        # the failure is reported once, by the probe. Set before grpc is first imported.
        os.environ.setdefault('GRPC_VERBOSITY', 'ERROR')
        token = _token(args) if args.command in ('ping', 'dryrun', 'status') else None
        if args.command == 'ping':
            from plait.cli.ping import ping

            return ping(args.kind, args.url, args.timeout, args.attempts, args.min_successful_attempts,
                        args.tls_ca, token)
        if args.command == 'dryrun':
            from plait.cli.ping import dryrun

            return dryrun(args.url, args.timeout, args.tls_ca, token)
        if args.command == 'status':
            from plait.cli.status import status

            return status(args.url, args.timeout, args.tls_ca, token)
        parser.print_help(sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
