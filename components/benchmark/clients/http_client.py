"""HTTP/1.1 client on aiohttp (with uvloop as the event loop): plain HTTP and the REST inference APIs."""

from __future__ import annotations

import errno

import aiohttp

from components.benchmark.clients.base import Outcome
from components.benchmark.targets import RequestSpec


class HttpClient:
    """Keep-alive connections (one per concurrent request), one prepared request."""

    def __init__(self, spec: RequestSpec, concurrency: int, timeout: float):
        self.spec = spec
        self.concurrency = concurrency
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None
        self._headers = dict(spec.headers)

    async def start(self) -> None:
        """Open the session; connections are made on first use and kept alive."""
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency,
                                         ttl_dns_cache=300, force_close=False)
        self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                             skip_auto_headers=("User-Agent",), auto_decompress=False)

    async def send(self) -> Outcome:
        """One request; every failure becomes an Outcome."""
        try:
            async with self.session.request(self.spec.method, self.spec.address, data=self.spec.body or None,
                                            headers=self._headers) as response:
                body = await response.read()
                return _classify(response.status, body, self.spec.response_marker)
        except aiohttp.ClientConnectorError as exc:
            refused = exc.os_error is not None and exc.os_error.errno == errno.ECONNREFUSED
            return Outcome("-", "connection_refused" if refused else "connect_error")
        except TimeoutError:
            return Outcome("-", "timeout")
        except aiohttp.ServerDisconnectedError:
            return Outcome("-", "disconnected")
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError):
            return Outcome("-", "malformed_response")
        except aiohttp.ClientOSError as exc:
            return Outcome("-", "disconnected" if exc.errno in (errno.ECONNRESET, errno.EPIPE) else "connect_error")

    async def close(self) -> None:
        """Close the session and its connections."""
        if self.session is not None:
            await self.session.close()


def _classify(status: int, body: bytes, marker: bytes | None) -> Outcome:
    code = str(status)
    if status >= 500:
        return Outcome(code, "server_error")
    if status >= 400:
        return Outcome(code, "rejected")
    if marker is not None and marker not in body:
        return Outcome(code, "malformed_response")
    return Outcome(code)
