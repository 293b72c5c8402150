"""`plait export kubernetes|docker-compose`: run a Flow YAML beyond one machine.

Both exporters render one shared description of the Flow (`topology.py`): service names,
`plait` commands, ports and health checks. `kubernetes.py` and `compose.py` write manifests,
`dockerfile.py` the image, `sources.py` finds the user's code the image must hold."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

EXAMPLES = '''examples:
  plait export kubernetes flow.yml k8s/ --k8s-namespace my-flow
  plait export docker-compose flow.yml docker-compose.yml
'''


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='plait export', epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Export a Flow YAML to Kubernetes manifests or a docker-compose file, with a '
                    'Dockerfile for the image its services run.')
    kinds = parser.add_subparsers(dest='kind', metavar='KIND', required=True)
    k8s = kinds.add_parser('kubernetes', help='a Deployment and a Service per executor shard and the gateway',
                           epilog='example: plait export kubernetes flow.yml k8s/ --k8s-namespace my-flow')
    k8s.add_argument('flow', help='the Flow YAML file')
    k8s.add_argument('outdir', help='folder to write the manifests, Dockerfile and README.md into')
    k8s.add_argument('--k8s-namespace', '--k8s_namespace', dest='namespace', default=None,
                     help='namespace of every manifest (default: none, i.e. kubectl\'s current one)')
    compose = kinds.add_parser('docker-compose', help='one service per executor replica and the gateway',
                               epilog='example: plait export docker-compose flow.yml docker-compose.yml')
    compose.add_argument('flow', help='the Flow YAML file')
    compose.add_argument('file', help='the compose file to write (the Dockerfile goes beside it)')
    compose.add_argument('--network-name', '--network_name', dest='network', default=None,
                         help='a named bridge network for the services (default: compose\'s own)')
    compose.add_argument('--publish-host', '--publish_host', dest='publish_host', default=None,
                         help='host address the gateway\'s ports are published on, e.g. 127.0.0.1 to keep '
                              'them local (default: every interface, as `docker run -p`)')
    for sub in (k8s, compose):
        sub.add_argument('--image', default=None,
                         help='image name of every service (default: plait-flow:latest)')
        sub.add_argument('--plait-package', '--plait_package', dest='plait_package', default=None,
                         help='where the image gets plait: a pip requirement such as plait==0.1.0 or a URL '
                              '(default: a wheel of this plait, written into wheels/)')
    return parser


def cli_main(argv: Optional[list[str]] = None) -> int:
    """`plait export ...`; 0 when written, 1 with a one-line error otherwise."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has printed
        return e.code if isinstance(e.code, int) else 2
    from plait.errors import PlaitError
    from plait.orchestrate.flow import Flow

    try:
        flow = Flow.load_config(args.flow, quiet=True)
        if args.kind == 'kubernetes':
            from plait.orchestrate.export.kubernetes import export_kubernetes

            written = export_kubernetes(flow, args.outdir, args.namespace, args.image, args.plait_package)
        else:
            from plait.orchestrate.export.compose import export_docker_compose

            written = export_docker_compose(flow, args.file, args.network, args.image, args.publish_host,
                                            args.plait_package)
    except (PlaitError, OSError) as e:
        print(f'plait export: error: {e}', file=sys.stderr)
        return 1
    for path in written:
        print(path)
    from plait.orchestrate.export.sources import collect_sources

    for name, where in sorted(collect_sources(flow)[1].items()):
        print(f'note: module {name!r} is installed here ({where}), not copied: list its package in '
              'plait-app/requirements.txt so the image installs it', file=sys.stderr)
    if args.kind == 'kubernetes':
        print(f'next: build the image and apply the manifests, see {os.path.join(args.outdir, "README.md")}')
    else:
        from plait.orchestrate.export.compose import start_command

        print(f'next: {start_command(args.file)}   (Compose v1: {start_command(args.file, v1=True)})')
    return 0


if __name__ == '__main__':
    sys.exit(cli_main())
