"""The `plait` command. Probes (`ping`, `dryrun`) import only stdlib, grpc and protobuf
messages, because Kubernetes starts them every few seconds."""
