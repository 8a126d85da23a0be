"""The load generator's HTTP/1.1 client against a raw TCP server that misbehaves on purpose."""

import asyncio
import os
import pty
import subprocess
import sys
import threading

import pytest

from components.benchmark.clients.http_client import HttpClient, encode_request
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import build_request

BODY = b'{"predictions": [1]}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


class RawServer:
    """Accepts connections on 127.0.0.1 and answers each request via `respond(request_index, writer)`."""

    def __init__(self, respond):
        self.respond = respond
        self.requests: list[bytes] = []
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                self.requests.append(head + await reader.readexactly(length))
                if not await self.respond(len(self.requests) - 1, writer):
                    writer.close()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def send_many(port, count, concurrency=1, timeout=1.0, headers=(), protocol="http", body=b""):
    settings = BenchSettings(url=f"http://127.0.0.1:{port}/v1/models/m:predict", protocol=protocol, model="m",
                             headers=headers, payload=body)
    client = HttpClient(build_request(settings), concurrency, timeout)

    async def run():
        await client.start()
        outcomes = [await client.send() for _ in range(count)]
        await client.close()
        return outcomes

    return asyncio.run(run())


@pytest.fixture
def server_factory():
    servers = []

    def make(respond):
        servers.append(RawServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def test_keep_alive_reuses_one_connection(server_factory):
    async def ok(index, writer):
        writer.write(OK)
        return True

    server = server_factory(ok)
    outcomes = send_many(server.port, 20)
    assert all(o.ok for o in outcomes) and server.connections == 1


def test_chunked_responses_are_parsed(server_factory):
    async def chunked(index, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pre\r\n"
                     b"e\r\ndictions\": [1]\r\n1\r\n}\r\n0\r\n\r\n")
        return True

    server = server_factory(chunked)
    outcomes = send_many(server.port, 3, protocol="kserve-v1", body=b"{}")
    assert [o.error for o in outcomes] == [None, None, None]


def test_idle_connection_closed_by_server_is_replayed_not_counted(server_factory):
    async def close_after_each(index, writer):
        writer.write(OK)
        await writer.drain()
        return False  # the server closes the connection after answering, without saying so

    server = server_factory(close_after_each)
    outcomes = send_many(server.port, 5)
    assert all(o.ok for o in outcomes)
    assert server.connections == 5


def test_connection_closed_mid_response_is_disconnected(server_factory):
    async def truncated(index, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")
        await writer.drain()
        return False

    server = server_factory(truncated)
    assert [o.error for o in send_many(server.port, 2)] == ["disconnected", "disconnected"]


def test_garbage_is_a_malformed_response(server_factory):
    async def garbage(index, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        return True

    server = server_factory(garbage)
    assert send_many(server.port, 1)[0].error == "malformed_response"


def test_silent_server_times_out(server_factory):
    async def silent(index, writer):
        await asyncio.sleep(5)
        return False

    server = server_factory(silent)
    outcome = send_many(server.port, 1, timeout=0.2)[0]
    assert (outcome.status, outcome.error) == ("-", "timeout")


def test_request_bytes_carry_host_length_and_custom_headers(server_factory):
    async def ok(index, writer):
        writer.write(OK)
        return True

    server = server_factory(ok)
    send_many(server.port, 1, headers=(("Host", "sklearn-iris.default.example.com"), ("model", "tf-mnist")),
              protocol="kserve-v1", body=b'{"instances": [[1]]}')
    request = server.requests[0].decode()
    assert request.startswith("POST /v1/models/m:predict HTTP/1.1\r\n")
    assert "Host: sklearn-iris.default.example.com\r\n" in request and request.count("Host:") == 1
    assert "model: tf-mnist\r\n" in request and "Content-Length: 20\r\n" in request
    assert request.endswith('{"instances": [[1]]}')


def test_get_without_body_has_no_content_length():
    spec = build_request(BenchSettings(url="http://127.0.0.1:9/health?x=1"))
    assert encode_request(spec) == b"GET /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"


def test_progress_line_on_a_terminal(server_factory):
    async def ok(index, writer):
        writer.write(OK)
        return True

    server = server_factory(ok)
    leader, follower = pty.openpty()
    completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "bench", f"http://127.0.0.1:{server.port}/",
                                "-qps", "50", "-t", "1.5s", "--json", os.devnull], stdin=follower, stdout=follower,
                               stderr=follower, timeout=60)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert completed.returncode == 0
    assert b"qps" in screen and b"done" in screen  # the live line was drawn
