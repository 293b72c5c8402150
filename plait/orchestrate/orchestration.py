"""What Deployment and Flow share: their processes started as one group, stopped on leaving
`with` (short drain on Ctrl-C, full drain on SIGTERM), `block()`, and a client to post with."""

from __future__ import annotations

import threading
from functools import partialmethod
from typing import Any, Optional

from plait.logs import get_logger
from plait.orchestrate.group import ProcessGroup, StopOnSignal, Terminated, exit_grace
from plait.orchestrate.process import ServiceProcess, prewarm
from plait.policies import RestartPolicy

LOCAL_HOST = '127.0.0.1'  # where the gateway and clients reach processes of this machine
PROTOCOLS = ('grpc', 'http', 'websocket')


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def public_endpoints(protocol: Any, port: Any, protocols: Any = None, ports: Any = None) -> tuple[list[str], list[int]]:
    """The protocols served and a port for each (free ones when not given), from `protocol` /
    `port` (one value or a list each) or their plural spellings `protocols` / `ports`."""
    from plait.errors import BadConfig
    from plait.wire.ports import free_port

    if protocols is not None:
        protocol = protocols
    if ports is not None:
        if port is not None:
            raise BadConfig('give port or ports, not both')
        port = ports
    names = [str(p).lower() for p in as_list(protocol)] or ['grpc']
    for name in names:
        if name not in PROTOCOLS:
            raise BadConfig(f'protocol={name!r}: use grpc, http or websocket')
    if len(set(names)) != len(names):
        raise BadConfig(f'protocol={names}: each protocol once')
    numbers = as_list(port)
    if numbers and len(numbers) != len(names):
        raise BadConfig(f'{len(names)} protocol(s) but {len(numbers)} port(s): give one port per protocol')
    return names, [int(p) for p in numbers] or [free_port() for _ in names]


class Orchestration:
    """Base of Deployment and Flow. Subclasses say what to run (`_processes`), where users
    reach it (`_public`: protocol, port, tls) and how long a drain may take (`_grace`)."""

    kind = 'Orchestration'
    quiet: bool = False
    restart: bool = True
    timeout_ready: int = 600000

    def _init_orchestration(self) -> None:
        self._group: Optional[ProcessGroup] = None
        self._client: Any = None
        self._signals = StopOnSignal()
        self._stopped = threading.Event()
        self._interrupted = False  # Ctrl-C caught by block(): leave with a short drain
        prewarm()  # get the fork server going while the user builds the rest

    # -- to be provided ----------------------------------------------------------------------
    def _processes(self) -> list[ServiceProcess]:
        raise NotImplementedError

    def _public(self) -> list[tuple[str, int]]:
        """(protocol, port) of each public endpoint, the first one used by `client`."""
        raise NotImplementedError

    def _grace(self) -> float:
        raise NotImplementedError

    _tls = False
    _host = '0.0.0.0'
    auth_tokens: tuple[str, ...] = ()  # what callers must send (the first is what `client` sends)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._group is not None and self._group.running

    def start(self) -> Any:
        """Start every process in parallel; return once all are ready."""
        if self.running:
            return self
        self._group = ProcessGroup(self._processes(), grace=self._grace(), stop_first=['gateway'],
                                   restart=RestartPolicy(enabled=self.restart))
        self._group.start(self.timeout_ready, self.kind, show_progress=not self.quiet)
        self._stopped.clear()
        get_logger(self.kind).debug('%d processes are running in this %s', len(self._group.processes), self.kind)
        if not self.quiet:
            from plait.orchestrate.banner import print_ready_banner
            print_ready_banner(self.kind, self._public(), self._host)
        return self

    def close(self, grace: Optional[float] = None) -> None:
        """Stop every process: the gateway first (in-flight requests finish), then executors."""
        self._stopped.set()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._group is not None:
            self._group.stop(grace)

    def __enter__(self) -> Any:
        self._signals.__enter__()
        try:
            return self.start()
        except BaseException:
            self._signals.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            # Ctrl-C means "now": a short drain instead of the full grace period
            self.close(grace=exit_grace(exc[0], self._interrupted))
        finally:
            self._signals.__exit__(*exc)

    def block(self, stop_event: Optional[threading.Event] = None) -> None:
        """Serve until Ctrl-C, SIGTERM, or `stop_event` is set."""
        event = stop_event or self._stopped
        self._interrupted = False
        try:
            while not event.wait(0.5):
                pass
        except Terminated:
            pass  # SIGTERM: stopped with the full grace period, in-flight requests finish
        except KeyboardInterrupt:
            self._interrupted = True

    # -- talking to it -----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            from plait.clients import Client
            protocol, port = self._public()[0]
            self._client = Client(host=LOCAL_HOST, port=port, protocol=protocol, tls=self._tls,
                                  auth_token=self.auth_tokens[0] if self.auth_tokens else None)
        return self._client

    def post(self, on: str = '/', inputs: Any = None, **kwargs: Any) -> Any:
        return self.client.post(on, inputs, **kwargs)

    # the CRUD shortcuts: post to /index, /search, /update, /delete
    index = partialmethod(post, '/index')
    search = partialmethod(post, '/search')
    update = partialmethod(post, '/update')
    delete = partialmethod(post, '/delete')

    def _ready(self, kind: str, timeout: float) -> bool:
        if not self.running:
            return False
        if kind == 'dry_run':
            return self.client.dry_run(timeout)
        return self.client.is_flow_ready(timeout) if kind == 'flow' else self.client.is_deployment_ready(timeout)

    def process_of(self, label: str) -> Optional[ServiceProcess]:
        """The process serving `label` (e.g. 'executor0/rep-0', 'gateway'), while running."""
        return self._group.by_label(label) if self._group else None
