"""The ServingRuntime protocol, one implementation per runtime kind, and the registry that picks one.

The local kind here runs KServe's model server (meshserve's model classes) as processes of a version's own on
127.0.0.1; the local model mesh (components/serving/mesh.py) is the other; components/serving/registry.py
names both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from components.errors import InvalidInputError, PlatformError
from components.processes import (
    SERVES_ENV,
    STATE_ID_ENV,
    carries,
    processes_carrying,
    start_time,
    state_identity,
    stop_carrier,
)
from components.processes.waiting import free_port

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class RunningVersion:
    """One model version being served: its process and listeners."""

    name: str
    version: str
    model_digest: str
    storage_uri: str
    pid: int
    http_port: int
    grpc_port: int
    log: str
    started: int = 0  # the process's start time (clock ticks since boot); 0 in records from before it was kept
    runtime: str = "kserve"  # the local kind that started it (records from before the mesh have none)
    role: str = ""  # in a model mesh: "holds" (the version is loaded there) or "forwards" (to a runtime that holds it)

    def to_dict(self) -> dict:
        """The JSON form kept in the platform state."""
        return asdict(self)


class ServingRuntime(Protocol):
    """Starts, probes and stops serving processes (or, on a cluster, workloads) for model versions."""

    protocols: tuple[str, ...]  # the inference protocols the server speaks, its own first

    def configure(self, options: dict[str, str]) -> None:
        """Take the runtime's options (`--runtime-option KEY=VALUE`) for the versions it starts next; an option it
        does not know is an error."""

    def start(self, name: str, version: str, model_dir: Path, model_digest: str, storage_uri: str,
              replicas: int = 1, first_replica: int = 0) -> list[RunningVersion]:
        """Serve a model directory from `replicas` processes (numbered from `first_replica`, when a scale-up adds
        them to running ones); return once all answer ready, or raise and leave nothing running."""

    def ready(self, running: RunningVersion) -> bool:
        """Whether the version answers its readiness probe."""

    def stop(self, running: RunningVersion) -> None:
        """Stop the version (only if it is the process this runtime started)."""

    def owns(self, running: RunningVersion) -> bool:
        """Whether the process is alive and is the one this runtime started for the record."""

    def stop_pid(self, pid: int, started: int | None = None) -> None:
        """Stop one server this runtime started (at that start time, when given)."""

    def unrecorded(self, recorded: set[int]) -> list[tuple[int, str]]:
        """Servers this runtime started that no record holds (PID and name/version): a start that was killed."""


class LocalKServeRuntime:
    """KServe's ModelServer as a local process per version, logs under <state>/runtimes/."""

    protocols: tuple[str, ...] = ("kserve-v1", "v2-rest", "v2-grpc")  # KServe's v1 REST first, as its sklearn server

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)
        self.dir = self.root / "runtimes"

    @property
    def identity(self) -> str:
        """The state directory's identity, carried by every server started from it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return state_identity(self.root)

    def configure(self, options: dict[str, str]) -> None:
        """It has no options."""
        if options:
            raise InvalidInputError(f"runtime_options.{next(iter(options))}", "the kserve runtime takes no option here",
                                    "drop --runtime-option")

    def start(self, name: str, version: str, model_dir: Path, model_digest: str, storage_uri: str,
              replicas: int = 1, first_replica: int = 0) -> list[RunningVersion]:
        """Launch `replicas` processes of `python -m components.serving` at once; return when all answer ready."""
        self.dir.mkdir(parents=True, exist_ok=True)
        launched = []
        try:
            for replica in range(first_replica, first_replica + replicas):
                launched.append(self._launch(name, version, model_dir, model_digest, storage_uri, replica))
            return [self._await_ready(running, process) for running, process in launched]
        except BaseException:  # not ready, failed, or interrupted (Ctrl-C, SIGTERM): leave no server behind
            for running, _ in launched:
                self.stop(running)
            raise

    def _launch(self, name: str, version: str, model_dir: Path, model_digest: str, storage_uri: str,
                replica: int) -> tuple[RunningVersion, subprocess.Popen]:
        http_port, grpc_port = free_port(), free_port()
        log = self.dir / (f"{name}-{version}.log" if replica == 0 else f"{name}-{version}-{replica}.log")
        # Every model server gets the same hash seed: two processes serving the same model then lay out their
        # dicts alike, and differ less from each other (A/A p90 spread between processes: 3.4% -> 2.0%).
        environment = {**os.environ, "PYTHONHASHSEED": "0", STATE_ID_ENV: self.identity,
                       SERVES_ENV: f"{name}/{version}"}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "components.serving", str(model_dir), "--name", name,
                 "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
                stdout=out, stderr=out, start_new_session=True, env=environment)
        return RunningVersion(name, version, model_digest, storage_uri, process.pid, http_port, grpc_port,
                              str(log), start_time(process.pid) or 0), process

    def _await_ready(self, running: RunningVersion, process: subprocess.Popen) -> RunningVersion:
        name, version, log = running.name, running.version, Path(running.log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PlatformError("model", f"{name} {version} exited while loading: {_last_line(log)}",
                                    f"check the model directory; full log: {log}")
            if self.ready(running):
                return running
            time.sleep(0.05)
        raise PlatformError("model", f"{name} {version} was not ready after {READY_TIMEOUT_S:.0f} s",
                            f"see {log}")

    def ready(self, running: RunningVersion) -> bool:
        """GET /v2/models/NAME/ready answers 200."""
        return answers_ready(running)

    def stop(self, running: RunningVersion) -> None:
        """SIGTERM (graceful), then SIGKILL after 20 s; never touches a process this state directory did not
        start (another platform's, a reused PID, or the live one seen from a copied state directory)."""
        self.stop_pid(running.pid, running.started or None)

    def owns(self, running: RunningVersion) -> bool:
        """The recorded process is alive, carries this state directory's identity and its recorded start time."""
        return carries(running.pid, self.identity, running.started or None)

    def stop_pid(self, pid: int, started: int | None = None) -> None:
        """Stop one server of this state directory's (at that start time, when given)."""
        stop_carrier(pid, self.identity, started)

    def unrecorded(self, recorded: set[int]) -> list[tuple[int, str]]:
        """Servers started from this state directory whose PID no record holds, with their name/version."""
        return [(pid, environment[SERVES_ENV]) for pid, environment in processes_carrying(self.identity)
                if SERVES_ENV in environment and pid not in recorded]


def answers_ready(running: RunningVersion) -> bool:
    """The version's REST listener answers GET /v2/models/NAME/ready with 200 within a second."""
    url = f"http://127.0.0.1:{running.http_port}/v2/models/{running.name}/ready"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][-300:] if lines else "no output"
