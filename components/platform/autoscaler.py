"""The local platform's autoscaler: the HorizontalPodAutoscaler's replica calculation
(components/autoscaling/algorithm.py) applied, every sync period, to each version of the models that ask for it.

`hpa-qps` reads each version's requests per second from the router's live traffic metrics (the local
Prometheus, with the live guard's selector); `hpa-cpu` reads the CPU its model-server processes used since the
last sync, in percent of one core (the ServingRuntime's request). Decisions go through `LocalPlatform.scale`:
new replicas join the router once ready, removed ones leave it before they stop. Each sync's decision per
version is kept in <state>/autoscaler/status.json for `meshserve local status`.

`meshserve local autoscale` keeps a model's target in <state>/autoscaler/targets.json and starts the autoscaler
process (`python -m components.platform.autoscaler_process STATE_DIR SYNC_PERIOD_S`) beside the router if it is
not running; it carries the state directory's identity, and `meshserve local down` stops it first.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from components.autoscaling.algorithm import HorizontalScaler, ScaleDecision, ScalingBehavior
from components.errors import InvalidInputError
from components.platform.protocol import ModelRef
from components.platform.state import MAX_REPLICAS, PlatformState, processes_of
from components.processes.identity import STATE_ID_ENV, carries, start_time, state_identity
from components.processes.waiting import terminated
from components.rollout.contract import ModelRecord

METRICS = ("hpa-qps", "hpa-cpu")
RATE_WINDOW = "10s"  # the QPS rate's window: a few of the local Prometheus's 1 s scrapes


@dataclass(frozen=True)
class ScalingTarget:
    """What one model asks of the autoscaler: the metric, the bounds, the target per replica (requests per
    second, or CPU percent of one core), the scale-down stabilization window, and where the target came from."""

    model: str
    metric: str
    min_replicas: int
    max_replicas: int
    target: float
    stabilization_s: float = 300.0
    target_source: str = "given"

    def validated(self) -> ScalingTarget:
        """This target, or the first field that is out of range as an error."""
        if self.metric not in METRICS:
            raise InvalidInputError("autoscaling", f"{self.metric!r} does not run locally", "use hpa-qps or hpa-cpu")
        if not 1 <= self.min_replicas <= self.max_replicas <= MAX_REPLICAS:
            raise InvalidInputError("max_replicas", f"{self.min_replicas} to {self.max_replicas} replicas",
                                    f"pass 1 <= min_replicas <= max_replicas <= {MAX_REPLICAS}")
        if not (math.isfinite(self.target) and self.target > 0):
            raise InvalidInputError("scale_target", f"{self.target:g} is not a positive number",
                                    "pass a target above 0")
        if not (math.isfinite(self.stabilization_s) and self.stabilization_s >= 0):
            raise InvalidInputError("stabilization_window", f"{self.stabilization_s:g} s is not a duration",
                                    "pass 0 s or more")
        return self


@dataclass(frozen=True)
class VersionScaling:
    """One sync's outcome for one version: the replicas it had and now has, and why."""

    model: str
    track: str
    version: str
    metric: str
    reading: float | None
    current: int
    desired: int
    reason: str
    message: str
    at: float


class ScalablePlatform(Protocol):
    """What the autoscaler needs of the local platform (components/platform/local.py)."""

    root: Path
    state: PlatformState

    def scale(self, model: ModelRef, replicas: int, track: str = "primary") -> object:
        """Serve the track's version by `replicas` processes."""

    def metrics_address(self) -> str:
        """The local Prometheus over the router's live traffic."""


@dataclass
class LocalAutoscaler:
    """Scales the versions of the models in `targets`, one sync at a time."""

    platform: ScalablePlatform
    targets: list[ScalingTarget]
    namespace: str = "default"
    scalers: dict[tuple[str, str], HorizontalScaler] = field(default_factory=dict)
    cpu_seen: dict[int, tuple[float, float]] = field(default_factory=dict)  # pid -> (cpu seconds, at)

    def sync(self, now: float | None = None) -> list[VersionScaling]:
        """Decide and apply each target's versions' replicas once; keep and return the outcomes."""
        now = time.time() if now is None else now
        records = dict(self.platform.state.records())
        outcomes = [self._sync_version(target, track, record, now)
                    for target in self.targets
                    for record in [records.get(target.model) or ModelRecord()]
                    for track, _ in record.tracks() if track != "baseline"]
        self._keep(outcomes)
        return outcomes

    def _sync_version(self, target: ScalingTarget, track: str, record: ModelRecord, now: float) -> VersionScaling:
        version = dict(record.tracks())[track]
        processes = processes_of(version)
        scaler = self.scalers.setdefault((target.model, version.version), HorizontalScaler(
            target.min_replicas, target.max_replicas, target.target,
            ScalingBehavior(scale_down_stabilization_s=target.stabilization_s)))
        reading = self._qps(version.version) if target.metric == "hpa-qps" else self._cpu_percent(
            [process.pid for process in processes], now)
        decision: ScaleDecision = scaler.decide(now, len(processes), reading)
        if decision.desired != len(processes):
            self.platform.scale(ModelRef(target.model, self.namespace), decision.desired, track)
        return VersionScaling(target.model, track, version.version, target.metric, reading, len(processes),
                              decision.desired, decision.reason, decision.message, now)

    def _qps(self, workload: str) -> float | None:
        from components.metrics.prometheus import PrometheusProvider
        from components.metrics.provider import NO_DATA
        from components.metrics.templates import REQUESTS_PER_SECOND, QueryArguments, render_query

        query = render_query(REQUESTS_PER_SECOND, QueryArguments(self.namespace, workload, RATE_WINDOW))
        measured = PrometheusProvider(self.platform.metrics_address()).query(query)
        if measured.usable:
            return measured.value
        return 0.0 if measured.outcome == NO_DATA else None  # no series yet: no traffic at all

    def _cpu_percent(self, pids: list[int], now: float) -> float | None:
        """The processes' CPU since the last sync, summed, in percent of one core (None on a first reading)."""
        total, complete = 0.0, True
        for pid in pids:
            seconds = _cpu_seconds(pid)
            seen = self.cpu_seen.get(pid)
            if seconds is not None:
                self.cpu_seen[pid] = (seconds, now)
            if seen is None or seconds is None or now <= seen[1]:
                complete = False
                continue
            total += 100 * (seconds - seen[0]) / (now - seen[1])
        return total if complete else None

    def _keep(self, outcomes: list[VersionScaling]) -> None:
        _write_json(self.platform.root / "autoscaler" / "status.json", [asdict(outcome) for outcome in outcomes])


class AutoscalerProcess:
    """The state directory's autoscaler process and the targets it reads (kept under <state>/autoscaler/)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / "autoscaler"

    def configure(self, target: ScalingTarget, sync_period_s: float) -> int:
        """Keep the model's target (replacing its earlier one), and start the process if it is not running;
        returns its PID."""
        if not 0.2 <= sync_period_s <= 600:
            raise InvalidInputError("sync_period", f"{sync_period_s:g} s is out of range", "pass 0.2 to 600 s")
        kept = [other for other in self.targets() if other.model != target.model]
        _write_json(self.dir / "targets.json", [asdict(each) for each in [*kept, target.validated()]])
        running = self.pid()
        return running if running is not None else self._start(sync_period_s)

    def targets(self) -> list[ScalingTarget]:
        """The targets kept, one per model."""
        path = self.dir / "targets.json"
        return [ScalingTarget(**entry) for entry in json.loads(path.read_text())] if path.is_file() else []

    def pid(self) -> int | None:
        """The running autoscaler's PID (None when none runs for this state directory)."""
        path = self.dir / "autoscaler.json"
        kept = json.loads(path.read_text()) if path.is_file() else {}
        alive = kept and carries(kept["pid"], state_identity(self.root), kept["started"])
        return kept["pid"] if alive else None

    def stop(self) -> list[str]:
        """Stop the process (only this directory's) and forget the targets; say what was stopped."""
        pid = self.pid()
        stopped = [f"autoscaler (pid {pid})"] if pid is not None and terminated(pid) else []
        for name in ("autoscaler.json", "targets.json"):
            (self.dir / name).unlink(missing_ok=True)
        return stopped

    def _start(self, sync_period_s: float) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, STATE_ID_ENV: state_identity(self.root)}
        with open(self.dir / "autoscaler.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "components.platform.autoscaler_process", str(self.root),
                                        str(sync_period_s)], stdout=log, stderr=log, env=environment,
                                       start_new_session=True)
        _write_json(self.dir / "autoscaler.json", {"pid": process.pid, "started": start_time(process.pid) or 0})
        return process.pid


def kept_status(root: Path) -> list[VersionScaling]:
    """The last sync's outcomes kept in the state directory (none when no autoscaler ran)."""
    status = Path(root) / "autoscaler" / "status.json"
    return [VersionScaling(**entry) for entry in json.loads(status.read_text())] if status.is_file() else []


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU of a process, in seconds (None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_json(path: Path, data: object) -> None:
    """Replace `path` with `data` as JSON, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)

