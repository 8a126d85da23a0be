"""The benchmark's protocol clients by the request's protocol. The gRPC client is imported only when a gRPC
load runs (grpc is heavy), and the HTTP client with it for symmetry of cost: importing the package stays light."""

from __future__ import annotations

from components.benchmark.clients.base import ProtocolClient
from components.benchmark.targets import RequestSpec


def client_for(spec: RequestSpec, concurrency: int, timeout: float, grpc_channels: int) -> ProtocolClient:
    """The client for a request's protocol."""
    if spec.is_grpc:
        from components.benchmark.clients.grpc_client import GrpcClient

        return GrpcClient(spec, timeout, grpc_channels)
    from components.benchmark.clients.http_client import HttpClient

    return HttpClient(spec, concurrency, timeout)
