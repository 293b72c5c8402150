"""`plait flow` and `plait deployment`: serve a Flow YAML, or one Executor as a Deployment,
from the command line until Ctrl-C or SIGTERM (exit 0); a bad YAML, an Executor that cannot be
loaded or a process that fails to start prints one clear error and exits 1."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Union

FLOW_EXAMPLES = '''examples:
  plait flow --uses flow.yml
  plait flow flow.yml

A Flow YAML:
  jtype: Flow
  with:
    protocol: grpc
    port: 12345
  executors:
    - name: encoder
      uses: my_executors:Encoder      # or a class name with py_modules: [my_executors.py]
    - name: indexer
      uses: indexer.yml
      replicas: 2
'''

DEPLOYMENT_EXAMPLES = '''examples:
  plait deployment --uses my_executors:Encoder --port 12345 --replicas 2
  plait deployment --uses encoder.yml --shards 2 --name encoder
  plait deployment --uses deployment.yml     # jtype: Deployment, options under `with:`
'''


def _parse(parser: argparse.ArgumentParser, argv: Optional[list[str]]) -> Union[argparse.Namespace, int]:
    """The parsed options, or the exit code after --help or a usage error (argparse printed it)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2


def _fail(prog: str, error: BaseException) -> int:
    print(f'{prog}: error: {error}', file=sys.stderr)
    return 1


def serve(service: Any, prog: str) -> int:
    """Start `service` (a Flow or Deployment), serve until Ctrl-C or SIGTERM, stop it; an exit code."""
    from plait.errors import PlaitError

    try:
        with service:
            service.block()
    except KeyboardInterrupt:  # asked to stop (also SIGTERM) while starting: stopped cleanly
        return 0
    except PlaitError as e:
        return _fail(prog, e)
    return 0


def flow_main(argv: Optional[list[str]] = None) -> int:
    """`plait flow --uses flow.yml`: serve a Flow YAML."""
    parser = argparse.ArgumentParser(prog='plait flow', description='Serve a Flow from its YAML file until '
                                     'Ctrl-C or SIGTERM.', epilog=FLOW_EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('yaml', nargs='?', help='the Flow YAML file (same as --uses)')
    parser.add_argument('--uses', help='the Flow YAML file (jtype: Flow)')
    parser.add_argument('--quiet', action='store_true', help="do not pass the services' logs through")
    parser.add_argument('--auth-token-file', default=None, metavar='FILE',
                        help='callers must send one of the tokens in FILE (one per line; also '
                             '$PLAIT_AUTH_TOKEN, $PLAIT_AUTH_TOKEN_FILE)')
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    path = args.uses or args.yaml
    if not path or (args.uses and args.yaml):
        parser.print_usage(sys.stderr)
        print('plait flow: error: give the Flow YAML file once, e.g. plait flow --uses flow.yml',
              file=sys.stderr)
        return 2
    from plait.errors import PlaitError
    from plait.orchestrate.flow import Flow

    try:
        overrides = {'quiet': True} if args.quiet else {}
        if args.auth_token_file:
            overrides['auth_token_file'] = args.auth_token_file
        flow = Flow.load_config(path, **overrides)
    except PlaitError as e:
        return _fail('plait flow', e)
    return serve(flow, 'plait flow')


def _json_object(text: Optional[str], flag: str) -> Optional[dict[str, Any]]:
    from plait.config import json_object_arg

    return json_object_arg(text, flag, prog='plait deployment')


def deployment_options_from_yaml(path: str) -> Optional[dict[str, Any]]:
    """The `with:` options of a `jtype: Deployment` YAML (paths made relative to it), or None
    when `path` is some other YAML (an Executor's, used as `uses`)."""
    from plait.errors import BadConfig
    from plait.uses import resolve_yaml_entry
    from plait.yaml_config import load_yaml_file

    doc = load_yaml_file(path)
    if not isinstance(doc, dict) or doc.get('jtype') != 'Deployment':
        return None
    options = dict(doc.get('with') or {})
    if not isinstance(options, dict):
        raise BadConfig(f'{path}: `with:` must be a mapping of Deployment options')
    return resolve_yaml_entry(options, os.path.dirname(os.path.abspath(path)))


def deployment_main(argv: Optional[list[str]] = None) -> int:
    """`plait deployment --uses X [--port P] [--replicas N] [--shards M] [--name NAME]`."""
    parser = argparse.ArgumentParser(
        prog='plait deployment', epilog=DEPLOYMENT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Serve one Executor as a Deployment (replicas x shards) until Ctrl-C or SIGTERM.')
    parser.add_argument('yaml', nargs='?', help='same as --uses')
    parser.add_argument('--uses', help="Executor as 'module:Class', an Executor YAML, or a Deployment YAML")
    parser.add_argument('--uses-with', default=None, help='JSON object of constructor arguments')
    parser.add_argument('--name', default=None, help='the Deployment name (default: executor)')
    parser.add_argument('--port', type=int, default=None, help='port clients use (default: a free one)')
    parser.add_argument('--host', default=None, help='address to listen on (default: 0.0.0.0)')
    parser.add_argument('--protocol', default=None, choices=['grpc', 'http', 'websocket'],
                        help='protocol of the gateway in front of replicas/shards (default: grpc)')
    parser.add_argument('--replicas', type=int, default=None, help='copies of the Executor (default: 1)')
    parser.add_argument('--shards', type=int, default=None, help='partitions of the Executor (default: 1)')
    parser.add_argument('--polling', default=None, help='ANY or ALL: shards a request goes to (default: ANY)')
    parser.add_argument('--timeout-ready', type=int, default=None, help='ms to wait for start-up; -1 forever')
    parser.add_argument('--quiet', action='store_true', help="do not pass the services' logs through")
    parser.add_argument('--auth-token-file', default=None, metavar='FILE',
                        help='callers must send one of the tokens in FILE (one per line; also '
                             '$PLAIT_AUTH_TOKEN, $PLAIT_AUTH_TOKEN_FILE)')
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    uses = args.uses or args.yaml
    if not uses or (args.uses and args.yaml):
        parser.print_usage(sys.stderr)
        print('plait deployment: error: give what to serve once, e.g. --uses my_module:MyExecutor',
              file=sys.stderr)
        return 2
    from plait.errors import PlaitError
    from plait.orchestrate.deployment import Deployment

    try:
        options: dict[str, Any] = {'uses': uses}
        if uses.endswith(('.yml', '.yaml')):
            options = deployment_options_from_yaml(uses) or options
        given = {'uses_with': _json_object(args.uses_with, '--uses-with'), 'name': args.name,
                 'port': args.port, 'host': args.host, 'protocol': args.protocol, 'replicas': args.replicas,
                 'shards': args.shards, 'polling': args.polling, 'timeout_ready': args.timeout_ready,
                 'quiet': args.quiet or None, 'auth_token_file': args.auth_token_file}
        options.update({k: v for k, v in given.items() if v is not None})
        deployment = Deployment(**options)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    except PlaitError as e:
        return _fail('plait deployment', e)
    return serve(deployment, 'plait deployment')


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m plait.orchestrate.cli flow|deployment ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {'flow': flow_main, 'deployment': deployment_main}
    if not argv or argv[0] not in commands:
        print('usage: python -m plait.orchestrate.cli {flow,deployment} ...', file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == '__main__':
    sys.exit(main())
