"""Prometheus metrics of one plait process, with the names and labels Jina documents (so
dashboards built for Jina keep working) plus plait's own (`plait_*`). Each process has its
own registry, served as Prometheus text on its monitoring port. Imported only with
`monitoring=True`.

Jina's request metrics are Summaries; here they are Histograms, which expose the same
`_count` and `_sum` series and add `_bucket` for quantiles."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
RUNTIME = ('runtime_name',)
PER_ENDPOINT = ('executor_endpoint', 'executor', 'runtime_name')


class _Serving:
    """A gauge read at scrape time (no work on the request path): 1 while `probe()` is true."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...],
                 probe: Callable[[], Iterable[tuple[tuple[str, ...], bool]]]):
        self._name, self._doc, self._labels, self._probe = name, documentation, labels, probe

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        for values, serving in self._probe():
            family.add_metric(list(values), 1.0 if serving else 0.0)
        yield family


class ProcessMetrics:
    """What every plait process reports: its restarts, its health, and a server for the text."""

    def __init__(self, runtime_name: str, restarts: int = 0):
        self.registry = CollectorRegistry()
        self.runtime_name = runtime_name
        Gauge('plait_restarts', 'Times this process was started again after it died',
              RUNTIME, registry=self.registry).labels(runtime_name).set(restarts)
        self._server: Any = None

    def _request_metrics(self, receiving_doc: str) -> None:
        """Jina's per-process request metrics, the same names for executors and gateways."""
        r, name = self.registry, self.runtime_name
        self.receiving = Histogram('jina_receiving_request_seconds', receiving_doc, RUNTIME, registry=r).labels(name)
        self.successful = Counter('jina_successful_requests', 'Number of successful requests',
                                  RUNTIME, registry=r).labels(name)
        self.failed = Counter('jina_failed_requests', 'Number of failed requests', RUNTIME, registry=r).labels(name)
        self.pending = Gauge('jina_number_of_pending_requests', 'Number of pending requests',
                             RUNTIME, registry=r).labels(name)

    def watch_health(self, is_serving: Callable[[], bool]) -> None:
        self.registry.register(_Serving('plait_health_serving', '1 while this process reports SERVING',
                                        RUNTIME, lambda: [((self.runtime_name,), is_serving())]))

    def serve(self, host: str, port: Optional[int], logger: logging.Logger) -> Optional[int]:
        """Serve the metrics on host:port (every path); a clear log line, not a failure, when
        the port is taken. Returns the port served, or None."""
        from prometheus_client import start_http_server

        if port is None:
            from plait.wire.ports import free_port
            port = free_port()
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            logger.error('monitoring: cannot serve metrics on %s:%s (%s); this process runs without them',
                         host, port, e.strerror or e)
            return None
        logger.debug('metrics at http://%s:%d/', host, port)
        return port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class WorkerMetrics(ProcessMetrics):
    """An executor replica: requests received, time in the Executor's method per endpoint,
    documents processed, bytes in and out; custom metrics of `@monitor` / `self.monitor` are
    made by the Executor in the same registry."""

    def __init__(self, runtime_name: str, executor: str, restarts: int = 0):
        super().__init__(runtime_name, restarts)
        r = self.registry
        self.executor = executor
        self._request_metrics('Time spent processing request')
        self.process = Histogram('jina_process_request_seconds',
                                 'Time spent when calling the executor request method',
                                 ('executor', 'executor_endpoint', 'runtime_name'), registry=r)
        self.documents = Counter('jina_document_processed',
                                 'Number of Documents that have been processed by the executor',
                                 PER_ENDPOINT, registry=r)
        self.request_bytes = Histogram('jina_received_request_bytes', 'The size in bytes of the request received',
                                       PER_ENDPOINT, registry=r, buckets=SIZE_BUCKETS)
        self.response_bytes = Histogram('jina_sent_response_bytes', 'The size in bytes of the response sent',
                                        PER_ENDPOINT, registry=r, buckets=SIZE_BUCKETS)
        self.batch_size = Histogram('plait_batch_size', 'Documents per call of a dynamically batched endpoint',
                                    PER_ENDPOINT, registry=r, buckets=BATCH_BUCKETS)
        self.batch_queue = Histogram('plait_batch_queue_seconds', 'Time a request waited for its batch',
                                     PER_ENDPOINT, registry=r)
        self.stream_items = Counter('plait_stream_items', 'Items sent by streaming (generator) endpoints',
                                    PER_ENDPOINT, registry=r)
        self._children: dict[str, tuple[Any, ...]] = {}

    def _of(self, endpoint: str) -> tuple[Any, ...]:
        """The per-endpoint series (request bytes, response bytes, method time, documents),
        looked up once per endpoint: `.labels()` takes a lock and builds a key each call."""
        children = self._children.get(endpoint)
        if children is None:
            labels = (endpoint, self.executor, self.runtime_name)
            children = self._children[endpoint] = (
                self.request_bytes.labels(*labels), self.response_bytes.labels(*labels),
                self.process.labels(self.executor, endpoint, self.runtime_name), self.documents.labels(*labels))
        return children

    def request(self, endpoint: str, seconds: float, ok: bool, received: int, sent: int) -> None:
        request_bytes, response_bytes, _, _ = self._of(endpoint)
        request_bytes.observe(received)
        response_bytes.observe(sent)
        self.receiving.observe(seconds)
        (self.successful if ok else self.failed).inc()

    def method(self, endpoint: str, seconds: float) -> None:
        self._of(endpoint)[2].observe(seconds)

    def documents_processed(self, endpoint: str, count: int) -> None:
        self._of(endpoint)[3].inc(count)

    def batch(self, endpoint: str, size: int, queued_seconds: Iterable[float]) -> None:
        labels = (endpoint, self.executor, self.runtime_name)
        self.batch_size.labels(*labels).observe(size)
        queue = self.batch_queue.labels(*labels)
        for seconds in queued_seconds:
            queue.observe(seconds)

    def stream_item(self, endpoint: str) -> None:
        self.stream_items.labels(endpoint, self.executor, self.runtime_name).inc()


class GatewayMetrics(ProcessMetrics):
    """The gateway: requests from clients, calls to each deployment, and the live health of
    every replica it routes to."""

    def __init__(self, runtime_name: str, restarts: int = 0):
        super().__init__(runtime_name, restarts)
        r = self.registry
        self._request_metrics('Time between receiving a request from the client and sending back the response')
        self.request_bytes = Histogram('jina_received_request_bytes', 'The size in bytes of requests from clients',
                                       RUNTIME, registry=r, buckets=SIZE_BUCKETS).labels(runtime_name)
        self.response_bytes = Histogram('jina_sent_response_bytes', 'The size in bytes of responses to clients',
                                        RUNTIME, registry=r, buckets=SIZE_BUCKETS).labels(runtime_name)
        per_deployment = ('runtime_name', 'deployment')
        self.sending = Histogram('jina_sending_request_seconds',
                                 'Time between sending a request to an executor and receiving its response',
                                 per_deployment, registry=r)
        self.sent_bytes = Histogram('jina_sent_request_bytes', 'Size in bytes of requests sent to executors',
                                    per_deployment, registry=r, buckets=SIZE_BUCKETS)
        self.received_bytes = Histogram('jina_received_response_bytes',
                                        'Size in bytes of responses returned by executors',
                                        per_deployment, registry=r, buckets=SIZE_BUCKETS)
        self._children: dict[str, tuple[Any, Any, Any]] = {}

    def request(self, seconds: float, ok: bool, received: int, sent: int) -> None:
        self.request_bytes.observe(received)
        self.response_bytes.observe(sent)
        self.receiving.observe(seconds)
        (self.successful if ok else self.failed).inc()

    def call(self, deployment: str, seconds: float, sent: int, received: Optional[int]) -> None:
        children = self._children.get(deployment)
        if children is None:  # looked up once per deployment
            labels = (self.runtime_name, deployment)
            children = self._children[deployment] = (self.sending.labels(*labels), self.sent_bytes.labels(*labels),
                                                      self.received_bytes.labels(*labels))
        sending, sent_bytes, received_bytes = children
        sending.observe(seconds)
        sent_bytes.observe(sent)
        if received is not None:
            received_bytes.observe(received)

    def watch_replicas(self, replicas: Callable[[], Iterable[tuple[str, int, str, bool]]]) -> None:
        """`plait_replica_serving{deployment, replica, address}` from the gateway's live view."""
        self.registry.register(_Serving(
            'plait_replica_serving', '1 while the gateway sees this executor replica SERVING',
            ('deployment', 'replica', 'address'),
            lambda: [((d, str(i), a), s) for d, i, a, s in replicas()]))
