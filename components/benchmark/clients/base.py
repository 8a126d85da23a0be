"""What every protocol client does and what it reports per request (the registry: clients/registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Error kinds a result counts (anything else is a bug in a client).
ERROR_KINDS = (
    "connection_refused",  # nothing listens at the address
    "connect_error",       # unreachable, DNS or TLS failure; gRPC UNAVAILABLE
    "timeout",             # no complete answer within the timeout
    "disconnected",        # the server closed the connection mid-request
    "rejected",            # HTTP 4xx / gRPC INVALID_ARGUMENT, NOT_FOUND: bad payload, wrong shape, no model
    "server_error",        # HTTP 5xx / gRPC INTERNAL, UNKNOWN: the server failed the request
    "malformed_response",  # a success status whose body is not an inference response
    "grpc_error",          # a gRPC status other than OK, UNAVAILABLE or DEADLINE_EXCEEDED
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's fate: its status (HTTP code, gRPC code name, or '-' for none) and error kind."""

    status: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the request got a well-formed successful answer."""
        return self.error is None


class ProtocolClient(Protocol):
    """Sends one prepared request over and over; never raises for a failed request."""

    async def start(self) -> None:
        """Open connections or sessions (inside the running event loop)."""

    async def send(self) -> Outcome:
        """Send the request once and classify what came back."""

    async def close(self) -> None:
        """Release connections."""
