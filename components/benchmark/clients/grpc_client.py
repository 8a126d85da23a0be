"""gRPC client on grpc.aio: the request is serialized once and sent as raw bytes.

By default one channel (one HTTP/2 connection) carries every concurrent request, as a long-lived
gRPC client does; `grpc_channels` opens more, each on its own connection.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import grpc

from components.benchmark.clients.base import Outcome
from components.benchmark.targets import RequestSpec

_STATUS_ERRORS = {grpc.StatusCode.UNAVAILABLE: "connect_error", grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
                  grpc.StatusCode.INVALID_ARGUMENT: "rejected", grpc.StatusCode.NOT_FOUND: "rejected",
                  grpc.StatusCode.INTERNAL: "server_error", grpc.StatusCode.UNKNOWN: "server_error"}


class GrpcClient:
    """Unary calls of one method with one prepared message."""

    def __init__(self, spec: RequestSpec, timeout: float, channels: int):
        self.spec = spec
        self.timeout = timeout
        self.channel_count = channels
        self.channels: list[grpc.aio.Channel] = []
        self._calls: Iterator[Any] = iter(())  # set by start()
        self._metadata = tuple((name.lower(), value) for name, value in spec.headers) or None

    async def start(self) -> None:
        """Open the channels (separate subchannel pools, so each is its own connection)."""
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 << 20)]
        self.channels = [grpc.aio.insecure_channel(self.spec.address, options=options)
                         for _ in range(self.channel_count)]
        self._calls = itertools.cycle([channel.unary_unary(self.spec.method) for channel in self.channels])

    async def send(self) -> Outcome:
        """One call; a non-OK status becomes an Outcome."""
        try:
            response = await next(self._calls)(self.spec.body, timeout=self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            return Outcome(code.name, _STATUS_ERRORS.get(code, "grpc_error"))
        return Outcome("OK") if response else Outcome("OK", "malformed_response")

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels:
            await channel.close()
