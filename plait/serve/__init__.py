"""What runs inside each microservice process: the executor worker and the gateway."""
