"""Real servers the tests start on 127.0.0.1: an S3-protocol server (moto's server mode), and a plain HTTP
server answering with the bytes a test gives it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class S3Server:
    """A running moto S3 server with IAM authentication on, one user, and its key."""

    process: subprocess.Popen
    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """Environment variables a storage client needs for this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        """A boto3 S3 client with the valid key."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def stop(self) -> None:
        """Terminate the server process."""
        self.process.terminate()
        self.process.wait(timeout=10)


# Requests moto serves before it starts enforcing IAM: create user, attach policy, create key.
_BOOTSTRAP_ACTIONS = 3


def start_s3_server(log_dir: Path) -> S3Server:
    """Start moto_server with IAM auth, create a user allowed s3:*, and return its credentials."""
    import boto3

    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_BOOTSTRAP_ACTIONS)}
    log = open(log_dir / "moto.log", "wb")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=log)
    wait_for_port(port)
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="pipeline")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="pipeline", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="pipeline")["AccessKey"]
    return S3Server(process, endpoint, key["AccessKeyId"], key["SecretAccessKey"])


@dataclass
class InferenceServer:
    """The test inference server (tests/support/inference_server.py) running in its own process."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        """Base URL of the REST endpoints."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        """host:port of the gRPC services."""
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> None:
        """Kill the server (SIGCONT first, in case a test left it stopped)."""
        import signal

        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)


def start_inference_server(delay_ms: float = 0.0) -> InferenceServer:
    """Start the test inference server on two free loopback ports and wait until both listen."""
    http_port, grpc_port = free_port(), free_port()
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "tests.support.inference_server", "--http-port",
                                str(http_port), "--grpc-port", str(grpc_port), "--delay-ms", str(delay_ms)], cwd=repo,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(http_port, timeout=60)
    wait_for_port(grpc_port, timeout=60)
    return InferenceServer(process, http_port, grpc_port)


def serve_bytes(answer: Callable[[], bytes]) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 answering every GET with `answer()`, in a thread of its own."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = answer()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
