"""OpenTelemetry metrics (`metrics=True`): the same Jina-named instruments as the Prometheus
ones, pushed periodically over OTLP/gRPC to `metrics_exporter_host:metrics_exporter_port`.
Executors get the meter provider as `self.meter_provider` / `self.meter`."""

from __future__ import annotations

import logging
from typing import Any

EXPORT_INTERVAL_MS = 10000


def meter_provider(service_name: str, endpoint: str, logger: logging.Logger) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    from plait.observability.tracing import warn_if_unreachable

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=5),
                                           export_interval_millis=EXPORT_INTERVAL_MS)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({SERVICE_NAME: service_name}))
    warn_if_unreachable(endpoint, 'metrics collector', logger)
    return provider


class WorkerMeter:
    def __init__(self, provider: Any, runtime_name: str, executor: str):
        meter = provider.get_meter('plait')
        self.runtime_name, self.executor = runtime_name, executor
        self.receiving = meter.create_histogram('jina_receiving_request_seconds', 's', 'Time spent processing request')
        self.successful = meter.create_counter('jina_successful_requests', description='Number of successful requests')
        self.failed = meter.create_counter('jina_failed_requests', description='Number of failed requests')
        self.process = meter.create_histogram('jina_process_request_seconds', 's',
                                              'Time spent when calling the executor request method')
        self.documents_counter = meter.create_counter('jina_document_processed',
                                                      description='Number of Documents processed by the executor')

    def _labels(self, endpoint: str) -> dict[str, str]:
        return {'executor_endpoint': endpoint, 'executor': self.executor, 'runtime_name': self.runtime_name}

    def request(self, endpoint: str, seconds: float, ok: bool) -> None:
        labels = {'runtime_name': self.runtime_name}
        self.receiving.record(seconds, labels)
        (self.successful if ok else self.failed).add(1, labels)

    def method(self, endpoint: str, seconds: float) -> None:
        self.process.record(seconds, self._labels(endpoint))

    def documents(self, endpoint: str, count: int) -> None:
        self.documents_counter.add(count, self._labels(endpoint))


class GatewayMeter:
    def __init__(self, provider: Any, runtime_name: str):
        meter = provider.get_meter('plait')
        self.labels = {'runtime_name': runtime_name}
        self.receiving = meter.create_histogram('jina_receiving_request_seconds', 's',
                                                'Time between receiving a request and sending back the response')
        self.successful = meter.create_counter('jina_successful_requests', description='Number of successful requests')
        self.failed = meter.create_counter('jina_failed_requests', description='Number of failed requests')
        self.sending = meter.create_histogram('jina_sending_request_seconds', 's',
                                              'Time between sending a request to an executor and its response')

    def request(self, seconds: float, ok: bool) -> None:
        self.receiving.record(seconds, self.labels)
        (self.successful if ok else self.failed).add(1, self.labels)

    def call(self, deployment: str, seconds: float) -> None:
        self.sending.record(seconds, {**self.labels, 'deployment': deployment})
