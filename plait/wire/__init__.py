"""The wire layer: what every plait process and client speaks, at the bottom of the package.

It imports nothing of plait but the generated `plait.proto` modules, so `serve` (worker,
gateway), `clients` and `orchestrate` all import it downward and never each other's
internals:

- `constants`: names fixed by the protocol (`_jina_dry_run_`, metadata keys, `base64:`, the
  int32 bounds of docarray's integer node, compression names);
- `messages`: request and status builders (one `error_status` for every error answer),
  parameters as Struct, timestamps and request ids;
- `json_codec`: the JSON form of documents, statuses and whole messages (HTTP, WebSocket);
- `join`: joining document batches by id at the protobuf level (gateway joins and the
  worker's multi-predecessor calls alike);
- `channel`: gRPC channel/server options and compression;
- `ports`: picking free TCP ports.
"""
