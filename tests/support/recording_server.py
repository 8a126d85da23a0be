"""HTTP servers on 127.0.0.1 that answer like the KFP API and the Argo server, and record every request."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    """One request: method, path (with query), headers (lower-case names) and the JSON body."""

    method: str
    path: str
    headers: dict
    body: object


@dataclass
class RecordingServer:
    """The server, its URL, what it received, and the token it accepts ('' accepts any)."""

    server: ThreadingHTTPServer
    url: str
    requests: list[Recorded] = field(default_factory=list)

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()


def _answer_kfp(method: str, path: str, body) -> tuple[int, dict]:
    if path.startswith("/apis/v2beta1/healthz"):
        return 200, {"multi_user": False}
    if method == "GET" and path.startswith("/apis/v2beta1/experiments"):
        return 200, {"experiments": [], "total_size": 0}
    if method == "POST" and path.startswith("/apis/v2beta1/experiments"):
        return 200, {"experiment_id": "exp-7", "display_name": body.get("display_name")}
    if method == "POST" and path.startswith("/apis/v2beta1/runs"):
        return 200, {"run_id": "run-42", "display_name": body.get("display_name"), "experiment_id": "exp-7",
                     "state": "PENDING"}
    return 404, {"error": f"no {method} {path}"}


def _answer_argo(method: str, path: str, body) -> tuple[int, dict]:
    if path.startswith("/api/v1/info"):
        return 200, {"managedNamespace": "kubeflow"}
    if method == "POST" and path.endswith("/submit"):
        namespace = path.split("/")[4]
        return 200, {"metadata": {"name": f"{body['resourceName']}-x7k2q", "namespace": namespace},
                     "spec": {"workflowTemplateRef": {"name": body["resourceName"]}}}
    return 404, {"error": f"no {method} {path}"}


def start_recording_server(kind: str, token: str, tls: ssl.SSLContext | None = None) -> RecordingServer:
    """A KFP-like (kind "kfp") or Argo-like (kind "argo") server that wants `Bearer <token>` (over HTTPS with
    the server context `tls`)."""
    answer = _answer_kfp if kind == "kfp" else _answer_argo
    recorded: list[Recorded] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            recorded.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.headers.get("Authorization") != f"Bearer {token}":
                status, payload = 401, {"error": "token rejected"}
            else:
                status, payload = answer(self.command, self.path, body or {})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, *args):  # noqa: D102 - quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls is not None else "http"
    result = RecordingServer(server, f"{scheme}://127.0.0.1:{server.server_address[1]}")
    result.requests = recorded
    return result
