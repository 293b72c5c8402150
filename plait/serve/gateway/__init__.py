"""The Gateway: one process that routes requests through a graph of deployments and speaks
grpc, http and websocket to clients."""
