"""Executor, the @requests decorator and the endpoint table a worker serves from."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import logging
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from plait.wire.constants import DRY_RUN_ENDPOINT

DEFAULT_ENDPOINT = '__default__'  # the key of bare @requests; '/default' on the wire

_ENDPOINTS_ATTR = '__plait_endpoints__'
_BATCHING_ATTR = '__plait_dynamic_batching__'
_registry: dict[str, type['Executor']] = {}


def monitor(*, name: Optional[str] = None, documentation: Optional[str] = None) -> Callable[[Callable], Callable]:
    """Time every call of an Executor method as the metric `jina_<name>` (default
    `<method>_seconds`) when monitoring is on; a no-op otherwise. `@requests` methods are
    timed already (`jina_process_request_seconds`)."""

    def decorate(fn: Callable) -> Callable:
        metric = name or f'{fn.__name__}_seconds'
        doc = documentation or f'Time spent calling method {fn.__name__}'
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def timed_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                with self.monitor(metric, doc):
                    return await fn(self, *args, **kwargs)
            return timed_async

        @functools.wraps(fn)
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self.monitor(metric, doc):
                return fn(self, *args, **kwargs)
        return timed

    return decorate


def requests(func: Optional[Callable] = None, *, on: Union[str, list[str], tuple[str, ...], None] = None,
             request_schema: Optional[type] = None, response_schema: Optional[type] = None):
    """Bind an Executor method to endpoints: bare `@requests` serves every endpoint no other
    method claims; `@requests(on='/foo')` or `on=['/a', '/b']` serves those."""

    def bind(fn: Callable) -> Callable:
        endpoints = [DEFAULT_ENDPOINT] if on is None else ([on] if isinstance(on, str) else list(on))
        for endpoint in endpoints:
            if not isinstance(endpoint, str) or not endpoint:
                raise TypeError(f'@requests(on=...) takes endpoint strings, got {endpoint!r}')
        setattr(fn, _ENDPOINTS_ATTR, (endpoints, request_schema, response_schema))
        return fn

    return bind(func) if func is not None else bind


def dynamic_batching(func: Optional[Callable] = None, *, preferred_batch_size: Optional[int] = None,
                     timeout: Optional[float] = 10_000, flush_all: bool = False,
                     custom_metric: Optional[Callable[[Any], Union[int, float]]] = None,
                     use_custom_metric: bool = False, use_dynamic_batching: bool = True):
    """Merge the documents of concurrent requests to this method's endpoints into one call:
    a batch is called once it holds `preferred_batch_size` documents or its oldest request has
    waited `timeout` ms. Goes above or below `@requests`; see plait.serve.batching."""
    options = {'preferred_batch_size': preferred_batch_size, 'timeout': timeout, 'flush_all': flush_all,
               'custom_metric': custom_metric, 'use_custom_metric': use_custom_metric,
               'use_dynamic_batching': use_dynamic_batching}

    def bind(fn: Callable) -> Callable:
        setattr(fn, _BATCHING_ATTR, options)
        return fn

    return bind(func) if func is not None else bind


@dataclass
class EndpointSpec:
    """How one endpoint is served: the method, whether it is async, and its document types."""

    method_name: str
    is_async: bool
    is_generator: bool
    input_type: type
    output_type: type
    accepted_kwargs: Optional[frozenset[str]] = None  # None = takes **kwargs
    is_singleton_doc: bool = False  # takes one document `doc` (called per document), not `docs`
    parameters_model: Optional[type] = None  # `parameters: MyModel` (pydantic): validated into it

    def call_kwargs(self, **available: Any) -> dict[str, Any]:
        if self.accepted_kwargs is None:
            return available
        return {k: v for k, v in available.items() if k in self.accepted_kwargs}


@dataclass
class RuntimeArgs:
    """What the runtime tells an Executor about where it runs."""

    name: str = 'executor'
    replica_id: int = 0
    shard_id: int = 0
    shards: int = 1
    replicas: int = 1
    workspace: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)
    # set when the Flow/Deployment turns them on (monitoring=True, tracing=True, metrics=True)
    runtime_name: Optional[str] = None  # this replica in metrics and traces, e.g. executor0/rep-1
    metrics_registry: Any = None     # prometheus_client CollectorRegistry served on port_monitoring
    tracer_provider: Any = None      # OpenTelemetry TracerProvider exporting over OTLP
    meter_provider: Any = None       # OpenTelemetry MeterProvider exporting over OTLP


def _check_signature(cls: type, name: str, fn: Callable) -> None:
    """Refuse, when the class is defined, an endpoint whose signature cannot be served."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if 'doc' in parameters and 'docs' in parameters:
        raise TypeError(f'{cls.__name__}.{name}: an endpoint takes `docs` (a batch) or `doc` (one document), '
                        'not both')
    if (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)) and 'doc' not in parameters:
        raise TypeError(f'{cls.__name__}.{name}: a streaming endpoint (a generator) takes one document `doc` '
                        '(e.g. `def gen(self, doc: MyDoc, **kwargs)`), not a batch `docs`')


# what typing.get_origin() gives for Iterator[T], AsyncGenerator[T, None] and their kin
_ITERATOR_ORIGINS = {collections.abc.Iterator, collections.abc.AsyncIterator, collections.abc.Generator,
                     collections.abc.AsyncGenerator, collections.abc.Iterable, collections.abc.AsyncIterable}


def _yielded(annotation: Any) -> Any:
    """What a generator's return annotation says it yields: Iterator[T] / AsyncGenerator[T, None] -> T;
    a bare document type (as Jina writes `-> MyDoc`) stays itself."""
    if typing.get_origin(annotation) in _ITERATOR_ORIGINS and typing.get_args(annotation):
        return typing.get_args(annotation)[0]
    return annotation


def _doc_list_item_type(annotation: Any) -> Optional[type]:
    """DocList[MyDoc] -> DocList[MyDoc]; Optional[DocList[X]] -> DocList[X]; else None."""
    from docarray import DocList
    from docarray.base_doc import BaseDoc

    if annotation is None or annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, type) and issubclass(annotation, DocList):
        return annotation
    origin = typing.get_origin(annotation)  # DocList[MyDoc] may be a typing alias
    if isinstance(origin, type) and issubclass(origin, DocList) and _is_concrete_doc_list(annotation):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseDoc):
        return DocList[annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _doc_list_item_type(arg)
            if found is not None:
                return found
    return None


def _is_concrete_doc_list(cls: type) -> bool:
    doc_type = getattr(cls, 'doc_type', None)
    from docarray.base_doc import BaseDoc
    return isinstance(doc_type, type) and issubclass(doc_type, BaseDoc)


def _endpoint_spec(cls: type, name: str, fn: Callable, request_schema, response_schema) -> EndpointSpec:
    from plait.documents import DocumentArray

    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = dict(getattr(fn, '__annotations__', {}))
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1:]  # drop self
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    accepted = None if takes_var_kw else frozenset(p.name for p in params)
    singleton = any(p.name == 'doc' for p in params)
    is_generator = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
    returns = _yielded(hints.get('return')) if is_generator else hints.get('return')
    input_type = (_doc_list_item_type(request_schema) or _doc_list_item_type(hints.get('doc' if singleton else 'docs'))
                  or DocumentArray)
    output_type = (_doc_list_item_type(response_schema) or _doc_list_item_type(returns)
                   or input_type)
    if not _is_concrete_doc_list(input_type):
        input_type = DocumentArray
    if not _is_concrete_doc_list(output_type):
        output_type = input_type
    parameters_hint = hints.get('parameters')
    from pydantic import BaseModel

    parameters_model = parameters_hint if isinstance(parameters_hint, type) and issubclass(parameters_hint, BaseModel) \
        else None
    return EndpointSpec(
        method_name=name,
        is_async=inspect.iscoroutinefunction(fn),
        is_generator=is_generator,
        input_type=input_type,
        output_type=output_type,
        accepted_kwargs=accepted,
        is_singleton_doc=singleton,
        parameters_model=parameters_model,
    )


class Executor:
    """Base class of user processing code. Decorate methods with `@requests`; each receives a
    batch `docs`, the request `parameters` and more as keyword arguments, and returns
    documents, a dict of results, or None (documents were changed in place)."""

    requests: dict[str, str] = {}
    # as Jina exposes it: class name -> {endpoint: the function serving it}, for each Executor class
    requests_by_class: dict[str, dict[str, Callable]] = {}
    dynamic_batching: dict[str, dict[str, Any]] = {}  # method name or endpoint -> options

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        batching: dict[str, dict[str, Any]] = {}
        for base in reversed(cls.__mro__[1:]):
            table.update(getattr(base, 'requests', {}) or {})
            batching.update(getattr(base, 'dynamic_batching', {}) or {})
        for name, member in vars(cls).items():
            bound = getattr(member, _ENDPOINTS_ATTR, None)
            if bound:
                _check_signature(cls, name, member)
                for endpoint in bound[0]:
                    table[endpoint] = name
            options = getattr(member, _BATCHING_ATTR, None)
            if options is not None:
                batching[name] = dict(options)
        cls.requests = table
        cls.requests_by_class = {**cls.requests_by_class,
                                 cls.__name__: {endpoint: getattr(cls, name) for endpoint, name in table.items()}}
        cls.dynamic_batching = batching
        _registry[cls.__name__] = cls

    def __init__(self, metas: Optional[dict] = None, requests: Optional[dict[str, str]] = None,
                 runtime_args: Optional[Union[RuntimeArgs, dict]] = None,
                 dynamic_batching: Optional[dict[str, dict[str, Any]]] = None, **kwargs: Any):
        if isinstance(runtime_args, dict):
            runtime_args = RuntimeArgs(**runtime_args)
        self.runtime_args = runtime_args or RuntimeArgs(name=type(self).__name__)
        # uses_metas={'name': ...} names the Executor itself (logs, workspace); the deployment keeps its name
        self.metas = types.SimpleNamespace(**{'name': self.runtime_args.name, **(metas or {})})
        self.logger = logging.getLogger(f'plait.{self.metas.name}')
        if requests:
            # YAML `requests:` rebinding, e.g. {'/index': 'foo'}
            table = dict(type(self).requests)
            for endpoint, method in requests.items():
                if not callable(getattr(self, method, None)):
                    from plait.errors import BadConfig
                    raise BadConfig(f'requests: {endpoint!r} -> {method!r}: {type(self).__name__} '
                                    f'has no method {method!r}')
                table[endpoint] = method
            self.requests = table
        if dynamic_batching:
            # `uses_dynamic_batching` / YAML `dynamic_batching:` over the decorators, option by option
            from plait.serve.batching import merge_options

            self.dynamic_batching = merge_options(type(self).dynamic_batching, dynamic_batching)

    @property
    def workspace(self) -> Optional[str]:
        ws = self.runtime_args.workspace or getattr(self.metas, 'workspace', None)
        if ws:
            path = os.path.join(ws, self.metas.name, str(self.runtime_args.shard_id))
            os.makedirs(path, exist_ok=True)
            return path
        return None

    @classmethod
    def serve(cls, uses_with: Optional[dict] = None, uses_metas: Optional[dict] = None,
              uses_requests: Optional[dict] = None, stop_event: Any = None, **deployment_options: Any) -> None:
        """Serve this Executor as a Deployment (any Deployment keyword: port, protocol,
        replicas...) and block until Ctrl-C, SIGTERM or `stop_event` (a threading.Event) is set."""
        from plait.errors import UnknownOption
        from plait.orchestrate.deployment import Deployment

        if 'uses' in deployment_options:
            raise UnknownOption(f'{cls.__name__}.serve() serves {cls.__name__}: it takes no uses=', ['uses'])
        given = {'uses_with': uses_with, 'uses_metas': uses_metas, 'uses_requests': uses_requests}
        deployment = Deployment(uses=cls, **{k: v for k, v in given.items() if v is not None}, **deployment_options)
        with deployment:
            deployment.block(stop_event)

    def close(self) -> None:
        """Called once when the serving process stops; override to release resources."""

    # -- observability (Jina's names; the OpenTelemetry ones import it only when used) -----------
    def monitor(self, name: Optional[str] = None, documentation: Optional[str] = None) -> Any:
        """`with self.monitor('metric_name', 'what it measures'):` times the block as the
        metric `jina_<name>` when monitoring is on; does nothing otherwise."""
        registry = self.runtime_args.metrics_registry
        if registry is None or not name:
            import contextlib
            return contextlib.nullcontext()
        metrics = self.__dict__.setdefault('_plait_custom_metrics', {})
        metric = metrics.get(name)
        if metric is None:
            from prometheus_client import Histogram

            runtime_name = self.runtime_args.runtime_name or self.runtime_args.name
            metric = metrics[name] = Histogram(name, documentation or name, ('runtime_name',), namespace='jina',
                                               registry=registry).labels(runtime_name)
        return metric.time()

    @property
    def tracer_provider(self) -> Any:
        return self.runtime_args.tracer_provider

    @property
    def tracer(self) -> Any:
        """An OpenTelemetry tracer: spans under the request's `tracing_context` join its trace;
        a no-op tracer when tracing is off."""
        if '_plait_tracer' not in self.__dict__:
            provider = self.runtime_args.tracer_provider
            if provider is not None:
                self.__dict__['_plait_tracer'] = provider.get_tracer(self.runtime_args.name)
            else:
                from opentelemetry import trace
                self.__dict__['_plait_tracer'] = trace.NoOpTracer()
        return self.__dict__['_plait_tracer']

    @tracer.setter
    def tracer(self, value: Any) -> None:
        self.__dict__['_plait_tracer'] = value

    @property
    def meter_provider(self) -> Any:
        return self.runtime_args.meter_provider

    @property
    def meter(self) -> Any:
        """An OpenTelemetry meter (`metrics=True`), None otherwise."""
        provider = self.runtime_args.meter_provider
        return provider.get_meter(self.runtime_args.name) if provider is not None else None

    @functools.cached_property
    def endpoint_specs(self) -> dict[str, EndpointSpec]:
        """The endpoint table with each method's document types, built once."""
        specs: dict[str, EndpointSpec] = {}
        for endpoint, name in self.requests.items():
            fn = getattr(type(self), name)
            bound = getattr(fn, _ENDPOINTS_ATTR, (None, None, None))
            specs[endpoint] = _endpoint_spec(type(self), name, fn, bound[1], bound[2])
        return specs

    def resolve_endpoint(self, endpoint: str) -> Optional[str]:
        """The table key that serves `endpoint`: itself, else the default, else None."""
        if endpoint in self.requests:
            return endpoint
        if endpoint == DRY_RUN_ENDPOINT:
            return DRY_RUN_ENDPOINT
        if DEFAULT_ENDPOINT in self.requests:
            return DEFAULT_ENDPOINT  # also for '/default', the default's name on the wire
        return None

    def known_endpoints(self) -> list[str]:
        return sorted(self.requests)


class NoOpExecutor(Executor):
    """What `.add()` serves without `uses`: passes documents through unchanged."""

    @requests
    def passthrough(self, **kwargs: Any) -> None:
        """Every endpoint: documents go on unchanged."""


def registered_executor(name: str) -> Optional[type[Executor]]:
    """An Executor subclass defined so far, by class name (YAML `jtype:`)."""
    return _registry.get(name)
