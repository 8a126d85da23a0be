"""Protocol clients: one per transport, each turning a RequestSpec into timed Outcomes."""

from components.benchmark.clients.base import Outcome, ProtocolClient
from components.benchmark.clients.registry import client_for

__all__ = ["Outcome", "ProtocolClient", "client_for"]
