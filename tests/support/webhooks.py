"""A webhook receiver on 127.0.0.1 that records every call and answers each path with the status the test sets
(as Flagger's load tester or a chat webhook would)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    """One request: its path, JSON body and when it came."""

    path: str
    body: dict
    at: float


@dataclass
class Webhooks:
    """The receiver: its base URL, the calls so far, and the status each path answers (200 unless set)."""

    server: ThreadingHTTPServer
    url: str
    calls: list[Call] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)

    def to(self, path: str) -> list[Call]:
        """The calls made to one path."""
        return [call for call in self.calls if call.path == path]

    def stop(self) -> None:
        """Shut it down."""
        self.server.shutdown()
        self.server.server_close()


def start_webhooks() -> Webhooks:
    """A running receiver."""
    hooks: Webhooks

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            hooks.calls.append(Call(self.path, json.loads(self.rfile.read(length) or b"{}"), time.time()))
            status = hooks.answers.get(self.path, 200)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks = Webhooks(server, f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hooks
