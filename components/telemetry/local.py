"""The local platform's telemetry processes: the exporter of the router's per-request log, and a Prometheus
(Debian's package) scraping it every second, both on 127.0.0.1, started on first use and kept in
<state>/telemetry/telemetry.json. Each carries the state directory's identity, so `meshserve local down` stops
them and a copied state directory never reaches them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from components.errors import PlatformError
from components.processes.identity import STATE_ID_ENV, carries, start_time, state_identity
from components.processes.waiting import free_port, terminated, wait_for
from components.routing.nginx import NginxRouter

SCRAPE_INTERVAL = "1s"
RETENTION = "6h"


@dataclass(frozen=True)
class TelemetryProcess:
    """One process the telemetry started: its PID and start time, and the port it serves."""

    pid: int
    started: int
    port: int


class LocalTelemetry:
    """Starts, finds and stops the exporter and Prometheus of one state directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / "telemetry"
        self.file = self.dir / "telemetry.json"

    def ensure(self, router: NginxRouter) -> str:
        """The local Prometheus's address, starting what is not running; the router sends its log to the
        exporter from now on."""
        kept = self._kept()
        exporter, prometheus = kept.get("exporter"), kept.get("prometheus")
        udp_port = kept.get("udp_port", 0)
        if exporter is None or not self._alive(exporter):
            udp_port = free_port(socket.SOCK_DGRAM)
            exporter = self._start("exporter", [sys.executable, "-m", "components.telemetry.exporter",
                                                str(self.root), str(udp_port)])
        if prometheus is None or not self._alive(prometheus):
            prometheus = self._start_prometheus(exporter.port)
        self._keep({"exporter": asdict(exporter), "prometheus": asdict(prometheus), "udp_port": udp_port})
        router.send_telemetry(udp_port)
        return f"http://127.0.0.1:{prometheus.port}"

    def stop(self) -> list[str]:
        """Stop both processes (only this directory's); say what was stopped."""
        stopped = [f"{role} (pid {process.pid})" for role, process in self._kept_processes().items()
                   if self._alive(process) and terminated(process.pid)]
        self.file.unlink(missing_ok=True)
        return stopped

    def _start(self, role: str, command: list[str]) -> TelemetryProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        port = free_port(socket.SOCK_STREAM)
        environment = {**os.environ, STATE_ID_ENV: state_identity(self.root)}
        with open(self.dir / f"{role}.log", "ab") as log:
            process = subprocess.Popen([*command, str(port)] if role == "exporter" else command + [
                f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log, env=environment,
                start_new_session=True, cwd=self.dir)
        ready = "/metrics" if role == "exporter" else "/-/ready"
        if not wait_for(lambda: _answers(f"http://127.0.0.1:{port}{ready}") or process.poll() is not None, 60) \
                or process.poll() is not None:
            process.kill()
            tail = (self.dir / f"{role}.log").read_text(errors="replace")[-300:].strip()
            raise PlatformError("telemetry", f"the local {role} did not start ({tail or 'no output'})",
                                f"see {self.dir / (role + '.log')}")
        return TelemetryProcess(process.pid, start_time(process.pid) or 0, port)

    def _start_prometheus(self, exporter_port: int) -> TelemetryProcess:
        binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else "")
        if not binary:
            raise PlatformError("prometheus", "Prometheus is not installed, and the live guard reads its metrics",
                                "run `make run` (installs Debian's prometheus), or set guard.address")
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
                          "scrape_configs:\n  - job_name: meshserve-router\n    static_configs:\n"
                          f"      - targets: ['127.0.0.1:{exporter_port}']\n")
        return self._start("prometheus", [binary, f"--config.file={config}",
                                          f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
                                          f"--storage.tsdb.retention.time={RETENTION}"])

    def _alive(self, process: TelemetryProcess) -> bool:
        return carries(process.pid, state_identity(self.root), process.started)

    def _kept(self) -> dict:
        data = json.loads(self.file.read_text()) if self.file.is_file() else {}
        return {**data, **self._kept_processes()}

    def _kept_processes(self) -> dict[str, TelemetryProcess]:
        data = json.loads(self.file.read_text()) if self.file.is_file() else {}
        return {role: TelemetryProcess(**data[role]) for role in ("exporter", "prometheus") if data.get(role)}

    def _keep(self, data: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(self.file)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
