"""The executor runtime: one process serving one Executor replica over gRPC.

It listens first (health NOT_SERVING), builds the Executor, then turns SERVING; on SIGTERM it
turns NOT_SERVING, refuses new requests, lets in-flight ones finish (bounded by a grace
period) and exits. User code never blocks health: sync methods run in a worker thread.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Optional

import grpc
from google.protobuf.message import DecodeError

from plait.config import add_arguments, from_arguments, from_json
from plait.errors import MalformedRequest
from plait.logs import get_logger
from plait.observability import ObservabilityConfig
from plait.proto import jina_common_pb2, jina_common_pb2_grpc, jina_data_pb2
from plait.serve import event_loop
from plait.serve.grpc_server import answer_stream, bytes_service, set_serving, start_grpc_server
from plait.serve.memory import TRIMMER
from plait.serve.lifecycle import Lifecycle, State, exit_when_parent_dies, signal_ready
from plait.wire.constants import DRY_RUN_ENDPOINT, IS_ERROR, WIRE_DEFAULT_ENDPOINT
from plait.wire.join import doc_list_in, join_doc_lists
from plait.wire.messages import dict_to_struct, error_status, now_timestamp, struct_to_dict
from plait.serve.parameters import as_model, for_executor
from plait.serve.worker_config import WorkerConfig

DataRequestProto = jina_data_pb2.DataRequestProto
StatusProto = jina_common_pb2.StatusProto

DATA_SERVICES = ('jina.JinaSingleDataRequestRPC', 'jina.JinaDataRequestRPC', 'jina.JinaRPC',
                 'jina.JinaDiscoverEndpointsRPC', 'jina.JinaSingleDocumentRequestRPC')


class ExecutorRunner:
    """Calls the Executor for one data request and turns the outcome into a response."""

    def __init__(self, executor: Any, name: str, allow_concurrent: bool, observer: Any = None,
                 results_key: str = ''):
        from plait.documents import decode_docs, encode_docs

        self.observer = observer  # plait.observability.observers.WorkerObserver, or None
        self._decode, self._encode = decode_docs, encode_docs
        self.executor = executor
        self.name = name
        # where a returned dict goes in parameters['__results__']: the replica's name, as Jina keys it
        self.results_key = results_key or name
        self._dry_run = DRY_RUN_ENDPOINT
        self.pool = ThreadPoolExecutor(max_workers=4 if allow_concurrent else 1,
                                        thread_name_prefix=f'{name}-user')
        self.batcher: Any = None  # plait.serve.batching.Batcher, when some endpoint batches
        if getattr(executor, 'dynamic_batching', None):
            from plait.serve.batching import batcher_for

            self.batcher = batcher_for(executor, name, self._invoke, 4 if allow_concurrent else 1)
            if self.batcher is not None and observer is not None:
                self.batcher.observers.append(observer.batch)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def process(self, requests: list[DataRequestProto], context: Any) -> DataRequestProto:
        """Serve one request (or several, from a join, merged into one call)."""
        first = requests[0]
        response = DataRequestProto()
        response.header.CopyFrom(first.header)
        response.parameters.CopyFrom(first.parameters)
        response.routes.extend(first.routes)
        route = response.routes.add(executor=self.name, start_time=now_timestamp())
        endpoint = first.header.exec_endpoint if first.header.HasField('exec_endpoint') else '/'
        try:
            key = self.executor.resolve_endpoint(endpoint)
            if key is None:
                from plait.errors import BadRequest
                raise BadRequest(self.unknown_endpoint_message(endpoint))
            if key == self._dry_run and key not in self.executor.requests:
                response.data.CopyFrom(first.data)
            else:
                await self._call(endpoint, key, requests, response)
        except Exception as ex:  # user code or bad documents: report, keep serving
            status = error_status(ex, executor=self.name)
            response.header.status.CopyFrom(status)
            route.status.CopyFrom(status)
            if context is not None:
                context.set_trailing_metadata(IS_ERROR)
            if not isinstance(ex, (ValueError, LookupError)):
                get_logger(self.name).error('%s raised on %s: %r', self.name, endpoint, ex)
        route.end_time.CopyFrom(now_timestamp())
        return response

    def unknown_endpoint_message(self, endpoint: str) -> str:
        shown = endpoint if len(endpoint) <= 200 else endpoint[:200] + '...'  # error details must stay small
        return (f'endpoint {shown!r} is not served by executor {self.name}; '
                f'it serves {self.executor.known_endpoints()}')

    async def _call(self, endpoint: str, key: str, requests: list[DataRequestProto],
                    response: DataRequestProto) -> None:
        spec = self.executor.endpoint_specs[key]
        if spec.is_generator:
            from plait.errors import BadRequest
            raise BadRequest(f'endpoint {endpoint!r} of executor {self.name} streams documents '
                             f'({type(self.executor).__name__}.{spec.method_name} is a generator): '
                             'call it with stream_doc')
        docs_matrix = [self._decode(r.data, spec.input_type) for r in requests]
        docs = docs_matrix[0] if len(docs_matrix) == 1 else self._joined(requests, spec.input_type)
        parameters = for_executor(struct_to_dict(requests[0].parameters), self.name)  # 'name__key' stripped
        if self.batcher is not None:
            queue = self.batcher.queue_for(endpoint, key, parameters)
            if queue is not None:
                out = await queue.submit(docs)
                self._encode(out, response.data)
                if self.observer is not None:
                    self.observer.documents(key, len(out))
                return
        # as Jina gives them: each input's documents (None when all are empty), and the same keyed
        # by the executor each input last passed (its route's last entry)
        docs_map = {r.routes[-1].executor if r.routes else '': d for r, d in zip(requests, docs_matrix)}
        result = await self._invoke(key, docs, parameters,
                                    docs_matrix if any(len(d) for d in docs_matrix) else None, docs_map)
        if result is None:
            out = docs
        elif isinstance(result, dict):
            out = docs
            earlier = parameters.get('__results__')
            results = dict(earlier) if isinstance(earlier, dict) else {}  # a caller's non-dict is replaced
            results[self.results_key] = result
            dict_to_struct({'__results__': results}, response.parameters)
        else:
            out = result
        if not hasattr(out, 'to_protobuf'):
            raise TypeError(f'{type(self.executor).__name__}.{spec.method_name} returned '
                            f'{type(result).__name__}; return a DocList, a dict or None')
        self._encode(out, response.data)
        if self.observer is not None:
            self.observer.documents(key, len(out))

    def _joined(self, requests: list[DataRequestProto], doc_list_type: type) -> Any:
        """The documents of several predecessors joined by id as the gateway joins them."""
        content = DataRequestProto.DataContentProto()
        content.docs.CopyFrom(join_doc_lists([doc_list_in(r.data) for r in requests]))
        return self._decode(content, doc_list_type)

    async def _invoke(self, key: str, docs: Any, parameters: dict[str, Any], docs_matrix: Any = None,
                      docs_map: Any = None) -> Any:
        """Call the method serving table key `key`: async ones on the loop, sync ones in a thread."""
        spec = self.executor.endpoint_specs[key]
        method = getattr(self.executor, spec.method_name)
        if spec.parameters_model is not None:
            parameters = as_model(spec.parameters_model, parameters, f'{self.name} {key}')

        async def call(tracing_context: Any) -> Any:
            if spec.is_singleton_doc:
                return await self._per_document(spec, method, docs, parameters, tracing_context)
            kwargs = spec.call_kwargs(docs=docs, parameters=parameters, docs_matrix=docs_matrix,
                                      docs_map=docs_map, tracing_context=tracing_context)
            if spec.is_async:
                return await method(**kwargs)
            return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: method(**kwargs))

        return await (call(None) if self.observer is None else self.observer.call_method(key, call))

    async def _per_document(self, spec: Any, method: Any, docs: Any, parameters: dict[str, Any],
                            tracing_context: Any) -> Any:
        """A method taking one document `doc`, called for each document of the request, as Jina
        does; what it returns replaces that document (None: changed in place)."""
        out = spec.output_type()
        if spec.is_async:
            for doc in docs:
                made = await method(**spec.call_kwargs(doc=doc, parameters=parameters, tracing_context=tracing_context))
                out.append(doc if made is None else made)
            return out

        def each() -> Any:
            for doc in docs:
                made = method(**spec.call_kwargs(doc=doc, parameters=parameters, tracing_context=tracing_context))
                out.append(doc if made is None else made)
            return out

        return await asyncio.get_running_loop().run_in_executor(self.pool, each)



def _parse(body: bytes, message: Any) -> Any:
    try:
        return message.FromString(body)
    except DecodeError as e:
        raise MalformedRequest(f'malformed {message.DESCRIPTOR.full_name}: {e}') from None


class WorkerServicer(jina_common_pb2_grpc.JinaDiscoverEndpointsRPCServicer):
    """The data services take raw bytes and parse them here, so bad input is INVALID_ARGUMENT."""

    def __init__(self, runtime: 'WorkerRuntime'):
        self._rt = runtime

    async def process_single_data(self, body: bytes, context: Any) -> bytes:
        TRIMMER.after(len(body))
        try:
            return await self._process_single_data(body, context)
        finally:
            TRIMMER.after(len(body))  # the calm before the trim starts once answered

    async def _process_single_data(self, body: bytes, context: Any) -> bytes:
        request = await self._request(body, DataRequestProto, context)
        return (await self._rt.serve([request], context)).SerializeToString()

    async def _request(self, body: bytes, message: Any, context: Any) -> Any:
        """`body` read as `message`; the call ends INVALID_ARGUMENT when it cannot be read and
        NOT_FOUND when it names an endpoint this executor does not serve."""
        try:
            request = _parse(body, message)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        unknown = self._rt.unknown_endpoint(request)
        if unknown:
            await context.abort(grpc.StatusCode.NOT_FOUND, unknown)
        return request

    async def process_data(self, body: bytes, context: Any) -> bytes:
        TRIMMER.after(len(body))
        try:
            request = _parse(body, jina_data_pb2.DataRequestListProto)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if not request.requests:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'process_data got an empty request list')
        return (await self._rt.serve(list(request.requests), context)).SerializeToString()

    async def Call(self, bodies: AsyncIterator[bytes], context: Any) -> None:
        # Requests of one stream are served concurrently; responses go out as they finish.
        async def serve_one(body: bytes) -> bytes:
            TRIMMER.after(len(body))
            try:
                request = _parse(body, DataRequestProto)
                return (await self._rt.serve([request], None, open_stream=True)).SerializeToString()
            finally:
                TRIMMER.after(len(body))  # the calm before the trim starts once answered

        try:
            await answer_stream(context, serve_one)
        except MalformedRequest as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Exception as e:  # refused: the executor is not (or no longer) serving
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))

    async def stream_doc(self, body: bytes, context: Any) -> AsyncIterator[bytes]:
        """One document in, a message per document the generator yields out (plait.serve.streaming)."""
        from plait.serve.streaming import SingleDocumentRequestProto, stream_endpoint

        request = await self._request(body, SingleDocumentRequestProto, context)
        runner = await self._rt.admit(context)
        try:
            endpoint = request.header.exec_endpoint if request.header.HasField('exec_endpoint') else '/'
            async for reply in stream_endpoint(runner, runner.executor.resolve_endpoint(endpoint), request):
                yield reply.SerializeToString()
        finally:
            self._rt.release()

    async def endpoint_discovery(self, request: Any, context: Any) -> jina_common_pb2.EndpointsProto:
        return self._rt.endpoints_proto


class WorkerRuntime:
    def __init__(self, config: WorkerConfig, tokens: tuple[str, ...] = ()):
        self.config = config
        self.tokens = tokens  # accepted callers' tokens (the gateway's secret among them); none: open
        self.logger = get_logger(f'{config.name}/rep-{config.replica_id}')
        self.address = f'{config.host}:{config.port}'
        self.lifecycle = Lifecycle(self.logger, self.address)
        self.runner: Optional[ExecutorRunner] = None
        self.observer: Any = None  # set in run() when monitoring, tracing or metrics is on
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        self.abandoned = False  # requests were still running in user threads when it stopped

    async def serve(self, requests: list[DataRequestProto], context: Any,
                    open_stream: bool = False) -> DataRequestProto:
        """Serve a request. While draining, new calls are refused (UNAVAILABLE: the caller
        retries elsewhere) but requests on an already open stream are still served: they
        were sent before the caller saw NOT_SERVING, and the grace period bounds them."""
        runner = await self.admit(context, open_stream)
        try:
            if self.observer is None:
                return await runner.process(requests, context)
            return await self.observer.serve(requests, context, runner.process)
        finally:
            self.release()

    async def admit(self, context: Any, open_stream: bool = False) -> ExecutorRunner:
        """Count a call in flight (drain waits for it), or refuse it: UNAVAILABLE on `context`,
        RuntimeError without one. Every admitted call ends with release()."""
        accepting = self.lifecycle.accepts_requests or (open_stream and self.lifecycle.state is State.DRAINING)
        if not accepting or self.runner is None:
            state = self.lifecycle.state.value
            if context is not None:
                await context.abort(grpc.StatusCode.UNAVAILABLE,
                                    f'executor {self.config.name} at {self.address} is {state}')
            raise RuntimeError(f'executor {self.config.name} at {self.address} is {state}')
        self._in_flight += 1
        self._idle.clear()
        return self.runner

    def release(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def unknown_endpoint(self, request: DataRequestProto) -> Optional[str]:
        """Why `request` names an endpoint this executor does not serve, or None."""
        if self.runner is None:
            return None
        endpoint = request.header.exec_endpoint if request.header.HasField('exec_endpoint') else '/'
        if self.runner.executor.resolve_endpoint(endpoint) is None:
            return self.runner.unknown_endpoint_message(endpoint)
        return None

    @functools.cached_property
    def endpoints_proto(self) -> jina_common_pb2.EndpointsProto:
        """Endpoints and their document schemas as Jina names them: the default endpoint is
        '/default', and `_jina_dry_run_` always listed with a full schema (Jina's gateway reads
        every entry's input and output). Built on the first discovery, once: an Executor's
        endpoints do not change while it runs."""
        from plait.documents import DocumentArray
        from plait.executor import DEFAULT_ENDPOINT

        assert self.runner is not None

        def schema(input_type: Any, output_type: Any, is_generator: bool = False,
                   is_singleton_doc: bool = False, parameters_model: Any = None) -> dict[str, Any]:
            parameters = {'name': None, 'model': None} if parameters_model is None else \
                {'name': parameters_model.__name__, 'model': parameters_model.model_json_schema()}
            return {'input': {'name': input_type.doc_type.__name__, 'model': _json_schema(input_type)},
                    'output': {'name': output_type.doc_type.__name__, 'model': _json_schema(output_type)},
                    'is_generator': is_generator, 'is_singleton_doc': is_singleton_doc,
                    'parameters': parameters}

        schemas: dict[str, Any] = {}
        for endpoint, spec in self.runner.executor.endpoint_specs.items():
            wire = WIRE_DEFAULT_ENDPOINT if endpoint == DEFAULT_ENDPOINT else endpoint
            schemas[wire] = schema(spec.input_type, spec.output_type, spec.is_generator, spec.is_singleton_doc,
                                   spec.parameters_model)
        schemas.setdefault(DRY_RUN_ENDPOINT, schema(DocumentArray, DocumentArray))
        proto = jina_common_pb2.EndpointsProto(endpoints=sorted(schemas))
        proto.schemas.update(schemas)
        return proto

    def _build_executor(self, cls: Optional[type] = None) -> Any:
        """The Executor of the config (of `cls` instead of `config.uses` when given: in-process
        harnesses pass the class itself)."""
        from plait.executor import RuntimeArgs
        from plait.uses import load_class_reference, resolve_uses

        cfg = self.config
        batching: Optional[dict[str, Any]] = None
        if cls is not None:
            uses_with, metas, reqs = cfg.uses_with, cfg.uses_metas, None
        elif cfg.uses.endswith(('.yml', '.yaml')):
            spec = resolve_uses(cfg.uses, cfg.uses_with, cfg.uses_metas)
            cls, uses_with, metas, reqs = spec.cls, spec.uses_with, spec.metas, spec.requests
            batching = spec.dynamic_batching
        else:
            cls, uses_with, metas, reqs = load_class_reference(cfg.uses), cfg.uses_with, cfg.uses_metas, None
        reqs = cfg.uses_requests or reqs
        if cfg.uses_dynamic_batching:
            from plait.serve.batching import merge_options

            batching = merge_options(batching or {}, cfg.uses_dynamic_batching)
        runtime_args = RuntimeArgs(name=cfg.name, replica_id=cfg.replica_id, shard_id=cfg.shard_id,
                                   replicas=cfg.replicas, shards=cfg.shards, workspace=cfg.workspace,
                                   runtime_name=cfg.runtime_name,
                                   **(self.observer.runtime_args() if self.observer is not None else {}))
        extra: dict[str, Any] = {'metas': metas, 'runtime_args': runtime_args}
        if reqs:
            extra['requests'] = reqs
        if batching:
            extra['dynamic_batching'] = batching
        executor = cls(**uses_with, **extra)
        if not hasattr(executor, 'runtime_args'):  # subclass forgot super().__init__(**kwargs)
            from plait.errors import BadConfig
            raise BadConfig(f'{cls.__name__}.__init__ must call super().__init__(**kwargs)')
        _ = executor.endpoint_specs  # build the endpoint table now, not on the first request
        return executor

    def _interceptors(self) -> list[Any]:
        if not self.tokens:
            return []
        from plait import auth

        auth.warn_if_plaintext(self.config.host, False, self.logger)  # an executor serves no TLS
        return [auth.grpc_interceptor(auth.TokenCheck(self.tokens))]

    async def run(self, ready_fd: Optional[int] = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        servicer = WorkerServicer(self)
        services = [
            bytes_service(DATA_SERVICES[0], unary={'process_single_data': servicer.process_single_data}),
            bytes_service(DATA_SERVICES[1], unary={'process_data': servicer.process_data}),
            bytes_service(DATA_SERVICES[2], streams={'Call': servicer.Call}),
            (jina_common_pb2_grpc.add_JinaDiscoverEndpointsRPCServicer_to_server, servicer, DATA_SERVICES[3]),
            bytes_service(DATA_SERVICES[4], unary_streams={'stream_doc': servicer.stream_doc}),
        ]
        server, health = await start_grpc_server(self.config.host, self.config.port, services,
                                                 interceptors=self._interceptors())
        self.logger.info('starting at %s (building the Executor)', self.address)
        observability = ObservabilityConfig.of(self.config)
        if observability.enabled:
            from plait.observability.observers import WorkerObserver

            self.observer = WorkerObserver(observability, self.config.runtime_name, self.logger)
        try:
            executor = await loop.run_in_executor(None, self._build_executor)
            self.runner = ExecutorRunner(executor, self.config.name, self.config.allow_concurrent, self.observer,
                                         self.config.runtime_name)
        except Exception:
            self.logger.exception('could not build the Executor (uses=%s)', _short(self.config.uses))
            await server.stop(0)
            return 1
        if self.observer is not None:
            self.observer.attach(executor, self.config.host, lambda: self.lifecycle.state is State.READY)
        # 'readiness' too: a lone replica is the whole Deployment, so one call answers it
        await set_serving(health, (*DATA_SERVICES, 'readiness'), True)
        self.lifecycle.move_to(State.READY)
        signal_ready(ready_fd)
        watch_parent = asyncio.ensure_future(exit_when_parent_dies(self._stop))
        await self._stop.wait()
        watch_parent.cancel()
        self.lifecycle.move_to(State.DRAINING, f'{self._in_flight} request(s) in flight')
        if self.runner.batcher is not None:
            self.runner.batcher.drain()  # queued requests are called now, not after their timeout
        await health.enter_graceful_shutdown()
        try:
            await asyncio.wait_for(self._idle.wait(), self.config.grace)
        except asyncio.TimeoutError:
            self.logger.warning('grace period of %.1fs over with %d request(s) still running',
                                self.config.grace, self._in_flight)
            self.abandoned = True
        await server.stop(0.5)
        try:
            executor.close()
        except Exception:
            self.logger.exception('Executor.close() raised')
        self.runner.close()
        if self.observer is not None:
            self.observer.close()
        self.lifecycle.move_to(State.STOPPED)
        return 0


def _short(text: str) -> str:
    return text if len(text) < 80 else text[:77] + '...'


def _json_schema(doc_list_type: Any) -> Any:
    try:
        schema = doc_list_type.doc_type.model_json_schema()
    except Exception:  # some tensor types have no JSON schema
        return {'title': doc_list_type.doc_type.__name__, 'type': 'object'}
    return _portable_schema(schema)


def _portable_schema(schema: Any) -> Any:
    """The schema in the form Jina's gateways (pydantic v1) read too: `Optional[X]` as X (its
    default says it may be absent) instead of anyOf with null, no boolean additionalProperties,
    and definitions under both `$defs` and `definitions`."""
    if isinstance(schema, list):
        return [_portable_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _portable_schema(value) for key, value in schema.items()}
    options = out.get('anyOf')
    if isinstance(options, list):
        kept = [o for o in options if not (isinstance(o, dict) and o.get('type') == 'null')]
        if len(kept) == 1 and len(kept) < len(options) and isinstance(kept[0], dict):
            del out['anyOf']
            out = {**kept[0], **out}
        elif len(kept) < len(options):
            out['anyOf'] = kept
    if isinstance(out.get('additionalProperties'), bool):  # v1 wrote a plain {"type": "object"}
        del out['additionalProperties']
    if '$defs' in out and 'definitions' not in out:
        out['definitions'] = out['$defs']
    return out


def build_parser() -> argparse.ArgumentParser:
    """`plait executor`: a flag per WorkerConfig field, or the whole config as JSON."""
    parser = argparse.ArgumentParser(prog='plait executor', description='Serve one Executor replica over gRPC.')
    parser.add_argument('--config-json', default=None, help='the whole WorkerConfig as JSON (what Deployment passes)')
    add_arguments(parser, WorkerConfig)
    parser.add_argument('--auth-token-file', default=None, metavar='FILE',
                        help='accept only callers sending one of the tokens in FILE (one per line); '
                             'also $PLAIT_AUTH_TOKEN, $PLAIT_AUTH_TOKEN_FILE')
    return parser


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    """The WorkerConfig of `--config-json` (or the defaults), with the flags given applied over it."""
    try:
        base = from_json(WorkerConfig, args.config_json) if args.config_json else WorkerConfig()
    except ValueError as e:
        raise SystemExit(f'plait executor: error: --config-json: {e}') from None
    worker_config = from_arguments(WorkerConfig, args, 'plait executor', base)
    if not worker_config.port:
        raise SystemExit('plait executor: error: --port is required')
    return worker_config


def accepted_tokens(token_file: Optional[str]) -> tuple[str, ...]:
    """Callers' tokens this replica accepts (from the file or environment) and the secret its
    gateway sends; taken out of the environment so the Executor's code never sees them."""
    from plait import auth

    try:
        tokens = auth.load_tokens(None, token_file) + tuple(filter(None, [auth.executor_secret()]))
    except auth.AuthConfigError as e:
        raise SystemExit(f'plait executor: error: {e}') from None
    for name in auth.SECRET_ENVS:
        os.environ.pop(name, None)
    return tokens


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    worker_config = config_from_args(args)
    tokens = accepted_tokens(args.auth_token_file)
    ready_fd = os.environ.get('PLAIT_READY_FD')
    from plait.errors import RuntimeFailedToStart

    runtime = WorkerRuntime(worker_config, tokens)
    try:
        code = event_loop.run(runtime.run(int(ready_fd) if ready_fd else None))
    except RuntimeFailedToStart as e:
        get_logger(worker_config.name).error('%s', e)
        return 1
    if runtime.abandoned:
        # user code still runs in a thread the interpreter would wait for at exit: the grace
        # period is over, so leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == '__main__':
    sys.exit(main())
