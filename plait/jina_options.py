"""The keyword names Jina 3.x documents for each call a Jina user's program makes (the
signatures of Flow(), Flow.add(), Deployment(), Client(), Client.post() and Executor.serve(),
with their @overload variants; post() also the keywords its **kwargs reach). plait honours
many of them; one it does not is refused as "not supported by plait: X" (plait.options).
Names only, no behaviour; `interop/jina_options.py --check` compares them with a real Jina."""

FLOW = frozenset((
    'asyncio', 'compression', 'cors', 'deployments_addresses', 'deployments_metadata',
    'deployments_no_reduce', 'description', 'docker_kwargs', 'entrypoint', 'env',
    'expose_endpoints', 'expose_graphql_endpoint', 'floating', 'graph_conditions',
    'graph_description', 'grpc_channel_options', 'grpc_server_options', 'host', 'inspect',
    'log_config', 'metrics', 'metrics_exporter_host', 'metrics_exporter_port', 'monitoring',
    'name', 'no_crud_endpoints', 'no_debug_endpoints', 'port', 'port_monitoring', 'prefetch',
    'protocol', 'provider', 'provider_endpoint', 'proxy', 'py_modules', 'quiet', 'quiet_error',
    'reload', 'replicas', 'retries', 'reuse_session', 'runtime_cls', 'ssl_certfile',
    'ssl_keyfile', 'stateful', 'suppress_root_logging', 'timeout_ctrl', 'timeout_ready',
    'timeout_send', 'title', 'tls', 'traces_exporter_host', 'traces_exporter_port', 'tracing',
    'uses', 'uses_with', 'uvicorn_kwargs', 'workspace',
))

ADD = frozenset((
    'allow_concurrent', 'compression', 'connection_list', 'copy_flow', 'cors',
    'deployment_role', 'description', 'disable_auto_volume', 'docker_kwargs', 'entrypoint',
    'env', 'exit_on_exceptions', 'external', 'floating', 'force_update', 'gpus',
    'grpc_channel_options', 'grpc_metadata', 'grpc_server_options', 'host',
    'install_requirements', 'log_config', 'metrics', 'metrics_exporter_host',
    'metrics_exporter_port', 'monitoring', 'name', 'native', 'needs', 'no_reduce',
    'output_array_type', 'polling', 'port', 'port_monitoring', 'prefer_platform', 'protocol',
    'provider', 'provider_endpoint', 'py_modules', 'quiet', 'quiet_error', 'raft_configuration',
    'reload', 'replicas', 'retries', 'runtime_cls', 'shards', 'ssl_certfile', 'ssl_keyfile',
    'stateful', 'timeout_ctrl', 'timeout_ready', 'timeout_send', 'title', 'tls',
    'traces_exporter_host', 'traces_exporter_port', 'tracing', 'uses', 'uses_after',
    'uses_after_address', 'uses_before', 'uses_before_address', 'uses_dynamic_batching',
    'uses_metas', 'uses_requests', 'uses_with', 'uvicorn_kwargs', 'volumes', 'when', 'workspace',
))

DEPLOYMENT = frozenset((
    'allow_concurrent', 'compression', 'connection_list', 'cors', 'description',
    'disable_auto_volume', 'docker_kwargs', 'entrypoint', 'env', 'exit_on_exceptions',
    'external', 'floating', 'force_update', 'gpus', 'grpc_channel_options', 'grpc_metadata',
    'grpc_server_options', 'host', 'include_gateway', 'install_requirements', 'log_config',
    'metrics', 'metrics_exporter_host', 'metrics_exporter_port', 'monitoring', 'name', 'native',
    'needs', 'no_reduce', 'output_array_type', 'polling', 'port', 'port_monitoring',
    'prefer_platform', 'protocol', 'provider', 'provider_endpoint', 'py_modules', 'quiet',
    'quiet_error', 'raft_configuration', 'reload', 'replicas', 'retries', 'runtime_cls',
    'shards', 'ssl_certfile', 'ssl_keyfile', 'stateful', 'timeout_ctrl', 'timeout_ready',
    'timeout_send', 'title', 'tls', 'traces_exporter_host', 'traces_exporter_port', 'tracing',
    'uses', 'uses_after', 'uses_after_address', 'uses_before', 'uses_before_address',
    'uses_dynamic_batching', 'uses_metas', 'uses_requests', 'uses_with', 'uvicorn_kwargs',
    'volumes', 'when', 'workspace',
))

CLIENT = frozenset((
    'asyncio', 'grpc_channel_options', 'host', 'log_config', 'metrics', 'metrics_exporter_host',
    'metrics_exporter_port', 'port', 'prefetch', 'protocol', 'proxy', 'reuse_session',
    'suppress_root_logging', 'tls', 'traces_exporter_host', 'traces_exporter_port', 'tracing',
))

POST = frozenset((
    'auth', 'backoff_multiplier', 'compression', 'continue_on_error', 'cookies', 'credentials',
    'headers', 'initial_backoff', 'inputs', 'max_attempts', 'max_backoff', 'metadata', 'on',
    'on_always', 'on_done', 'on_error', 'parameters', 'prefetch', 'request_size',
    'results_in_order', 'return_responses', 'return_type', 'show_progress', 'stream',
    'target_executor', 'timeout',
))

# Executor.serve() takes a Deployment's keywords (but needs and include_gateway) and stop_event
EXECUTOR_SERVE = (DEPLOYMENT - {'needs', 'include_gateway'}) | {'stop_event'}
