"""A real Prometheus (Debian's package) on 127.0.0.1 for the tests, scraping an exporter the test controls."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port


@dataclass
class PrometheusServer:
    """The server's process and address."""

    process: subprocess.Popen
    address: str

    def stop(self) -> None:
        """Stop Prometheus."""
        self.process.terminate()
        self.process.wait(timeout=30)


def start_prometheus(root: Path, targets: list[str], scrape_s: float = 1.0) -> PrometheusServer:
    """Prometheus scraping `targets` (HOST:PORT) every `scrape_s`, its data under `root`; ready when returned."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    config = root / "prometheus.yml"
    interval = f"{round(scrape_s * 1000)}ms"
    config.write_text(f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
                      "scrape_configs:\n  - job_name: meshserve-tests\n    static_configs:\n"
                      f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
    port = free_port()
    log = open(root / "prometheus.log", "wb")
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{address}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return PrometheusServer(process, address)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"Prometheus did not get ready: {(root / 'prometheus.log').read_text()[-500:]}")


def prometheus_version() -> str:
    """`prometheus --version`'s first line."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
