"""HTTP servers that answer as a broken or hostile KFP, Argo, Kubernetes or S3 endpoint would.

One server per behaviour, each on its own 127.0.0.1 port:
- echo500: 500 with every request header echoed in the body (as some proxies and debug servers do);
- html: 200 with a login page, whatever was asked;
- empty: 200 with the JSON object `{}`;
- truncated: 200 declaring a longer JSON body than it sends, then closing;
- redirect: 302 to the echo500 server, another origin.
A server that accepts and never answers is a listening socket nobody accepts from (cli_cases' `taken`).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = ("echo500", "html", "empty", "truncated", "redirect")


class _Hostile(BaseHTTPRequestHandler):
    behaviour = ""
    redirect_to = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """Quiet: the cases judge what the client prints."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        if self.behaviour == "echo500":
            self._send(500, "text/plain", f"{self.requestline}\n{self.headers}".encode())
        elif self.behaviour == "html":
            self._send(200, "text/html", b"<html><body><form>Sign in</form></body></html>")
        elif self.behaviour == "empty":
            self._send(200, "application/json", b"{}")
        elif self.behaviour == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
            self.wfile.write(b'{"kind": "Status", "metadata": {"na')
            self.close_connection = True
        else:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def redirect_server(target: str) -> ThreadingHTTPServer:
    """A server that answers every request with a 302 to the same path under `target` (another origin)."""
    return _serve(type("_redirect", (_Hostile,), {"behaviour": "redirect", "redirect_to": target}))


class HostileServers:
    """One running server per behaviour; `ports[behaviour]` is where it listens."""

    def __init__(self) -> None:
        self._servers: list[ThreadingHTTPServer] = []
        self.ports: dict[str, int] = {}
        for behaviour in ("echo500", *[b for b in BEHAVIOURS if b != "echo500"]):
            handler = type(f"_{behaviour}", (_Hostile,), {
                "behaviour": behaviour, "redirect_to": f"http://127.0.0.1:{self.ports.get('echo500', 0)}"})
            server = _serve(handler)
            self._servers.append(server)
            self.ports[behaviour] = server.server_address[1]

    def close(self) -> None:
        """Stop every server."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
