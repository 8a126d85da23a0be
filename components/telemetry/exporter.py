"""The router's per-request log turned into Istio's standard metrics, served for Prometheus.

nginx sends one syslog line per request over UDP: the upstream attempts' addresses, statuses and response
times, and the listener's port. Each attempt counts for the version that address belongs to (read from the
platform's records), as the destination's sidecar would report it: `istio_requests_total` by response code, and
`istio_request_duration_milliseconds` with Istio's default buckets. Run as
`python -m components.telemetry.exporter STATE_DIR UDP_PORT HTTP_PORT` (the local telemetry starts it).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Istio's default buckets for istio_request_duration_milliseconds
BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
              1800000, 3600000)
NAMESPACE = "default"  # the local platform's one namespace
TAG = "meshserve: "


class Versions:
    """Upstream address -> (model, version), from the platform's records, read again when they change."""

    def __init__(self, root: Path):
        self.root = root
        self.read_at = 0.0
        self.by_address: dict[str, tuple[str, str]] = {}
        self.grpc_port = ""
        self._read()

    def of(self, address: str) -> tuple[str, str] | None:
        """The version an upstream address serves (records re-read at most once a second)."""
        if address not in self.by_address and time.monotonic() - self.read_at > 1.0:
            self._read()
        return self.by_address.get(address)

    def _read(self) -> None:
        import json

        from components.platform.state import PlatformState

        self.read_at = time.monotonic()
        found = {}
        try:
            records = PlatformState(self.root).read()
        except Exception:  # a state file caught mid-write, or unreadable: keep what was known
            return
        for name, record in records.items():
            for _, version in record.tracks():
                for protocol in ("http", "grpc"):
                    for address in version.endpoint.addresses(protocol):
                        found[address] = (name, version.version)
        self.by_address = found
        ports = self.root / "router" / "ports.json"
        self.grpc_port = str(json.loads(ports.read_text()).get("grpc", "")) if ports.is_file() else ""


class Metrics:
    """The counters and histograms, per version, under one lock."""

    def __init__(self, versions: Versions):
        self.versions = versions
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str, str]] = Counter()
        self.buckets: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS_MS))
        self.sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add_line(self, line: str) -> None:
        """Count one request's upstream attempts."""
        fields = line.rsplit(TAG, 1)[-1].strip().split("|")
        if len(fields) != 4:
            return
        addresses, statuses, seconds = (_attempts(field) for field in fields[:3])
        protocol = "grpc" if fields[3] == self.versions.grpc_port else "http"
        for address, status, elapsed in zip(addresses, statuses, seconds, strict=False):
            served = self.versions.of(address)
            if served is None or not status.isdigit():
                continue
            model, version = served
            self._count(model, version, protocol, status, elapsed)

    def _count(self, model: str, version: str, protocol: str, status: str, elapsed: str) -> None:
        try:
            milliseconds = float(elapsed) * 1000
        except ValueError:
            milliseconds = 0.0
        key = (model, version, protocol)
        with self.lock:
            self.requests[(*key, status)] += 1
            self.counts[key] += 1
            self.sums[key] += milliseconds
            row = self.buckets[key]
            for index, bound in enumerate(BUCKETS_MS):
                if milliseconds <= bound:
                    row[index] += 1

    def exposition(self) -> str:
        """Prometheus's text format."""
        lines = ["# TYPE istio_requests_total counter"]
        with self.lock:
            for (model, version, protocol, code), count in sorted(self.requests.items()):
                lines.append(f"istio_requests_total{{{_labels(model, version, protocol)},"
                             f'response_code="{code}"}} {count}')
            lines.append("# TYPE istio_request_duration_milliseconds histogram")
            for key, row in sorted(self.buckets.items()):
                labels = _labels(*key)
                for bound, count in zip(BUCKETS_MS, row, strict=True):
                    lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{bound:g}"}} {count}')
                lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {self.counts[key]}')
                lines.append(f"istio_request_duration_milliseconds_sum{{{labels}}} {self.sums[key]:.3f}")
                lines.append(f"istio_request_duration_milliseconds_count{{{labels}}} {self.counts[key]}")
        return "\n".join(lines) + "\n"


def _attempts(field: str) -> list[str]:
    """An nginx upstream variable's values, one per attempt (", " between servers, " : " between redirects)."""
    return [part.strip() for part in field.replace(" : ", ", ").split(",")]


def _labels(model: str, version: str, protocol: str) -> str:
    return (f'reporter="destination",destination_workload="{version}",destination_workload_namespace="{NAMESPACE}",'
            f'destination_service_name="{model}",request_protocol="{protocol}"')


def serve(root: Path, udp_port: int, http_port: int) -> None:
    """Receive the router's log lines on UDP and serve /metrics over HTTP, both on 127.0.0.1, until killed."""
    metrics = Metrics(Versions(root))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    receiver.bind(("127.0.0.1", udp_port))

    def receive() -> None:
        while True:
            data = receiver.recv(65536)
            metrics.add_line(data.decode(errors="replace"))

    threading.Thread(target=receive, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = metrics.exposition().encode() if self.path == "/metrics" else b"see /metrics\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", http_port), Handler).serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
