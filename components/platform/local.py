"""The local platform: model versions as local processes behind nginx, rolled out by the shared rules.

It composes the three parts the rollout rules (components/rollout/rules.py) speak to: KServe model
server processes (the runtime: processes of a version's own, or its place on a local model mesh's shared
runtimes), nginx (the router) and a JSON state file under a lock. The rules
give it the same guarantees as a cluster: a candidate gets traffic only once ready, a failed deploy
leaves the primary and its routes as they were, promote and rollback refuse an unhealthy target. A
runtime that dies stays routed as a failing backend: nginx retries on the other version, and
status reports it down.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components.autoscaling.algorithm import HPA_SYNC_PERIOD_S
from components.errors import InvalidInputError, PlatformError
from components.inputs.documents import seconds_from_env
from components.platform.protocol import (
    ClientEndpoint,
    ClusterAccess,
    Deployed,
    DeployRequest,
    InstanceStatus,
    ModelRef,
    ModelStatus,
    PlatformStatus,
    SharedRuntimeStatus,
    VersionStatus,
    drift_text,
)
from components.platform.state import (
    MAX_REPLICAS,
    FileJournal,
    LocalDetails,
    PlatformState,
    processes_of,
    state_dir,
)
from components.rollout.contract import AnalysisSides, Candidate, ModelRecord, Version
from components.rollout.progress import Progress
from components.rollout.rules import Rollout
from components.routing.nginx import NginxRouter
from components.routing.spec import TRACK_HEADER, Endpoint, Route, RoutingSpec, model_headers
from components.serving.registry import DEFAULT_LOCAL_RUNTIME, LOCAL_RUNTIMES, LocalServers, local_kind_for
from components.serving.runtime import RunningVersion
from components.storage.fetch import materialize
from components.storage.published import read_published_manifest
from components.storage.uri import published_version_name

if TYPE_CHECKING:
    from components.deployment.spec import DeploymentSpec
    from components.platform.autoscaler import ScalingTarget

AUTOSCALER_SYNC_ENV = "MESHSERVE_AUTOSCALER_SYNC_S"  # a deploy's autoscaler period, shortened by tests


@dataclass(frozen=True)
class LocalDeployment:
    """What a local deploy asks of the runtime beyond the model: how many processes (on a model mesh: copies)
    serve the version, on which local runtime, with which of its options."""

    replicas: int
    runtime: str = DEFAULT_LOCAL_RUNTIME
    runtime_options: tuple[tuple[str, str], ...] = ()


def default_replicas() -> int:
    """One model-server process per two cores: the router and the load's client need the rest."""
    return max(1, (os.cpu_count() or 1) // 2)


class LocalProcesses:
    """The rollout's runtime here: model-server processes (replicas) per version, from a materialized model, each
    handled by the local runtime that started it."""

    def __init__(self, servers: LocalServers, models_dir: Path):
        self.servers = servers
        self.models_dir = models_dir

    def start(self, candidate: Candidate) -> Version:
        """Copy the version out of storage and serve it; return once every replica answers ready."""
        deployment = candidate.spec if isinstance(candidate.spec, LocalDeployment) else LocalDeployment(
            default_replicas())
        runtime = self.servers.kind(deployment.runtime)
        runtime.configure(dict(deployment.runtime_options))
        model_dir = materialize(candidate.storage_uri, self.models_dir)
        processes = runtime.start(candidate.name, candidate.version, model_dir, candidate.model_digest,
                                  candidate.storage_uri, deployment.replicas)
        return Version(candidate.name, candidate.version, candidate.model_digest, candidate.storage_uri,
                       _endpoint(candidate.version, processes), LocalDetails(tuple(processes)))

    def resized(self, version: Version, replicas: int) -> tuple[Version, Version | None]:
        """`version` served by `replicas` processes: new ones started beside its own (returned once ready), or
        its last ones set apart. Returns the resized version and the set-apart replicas (None when growing)."""
        processes = processes_of(version)
        if any(process.role for process in processes):
            raise InvalidInputError("replicas", f"{version.name} {version.version} runs on runtimes its model "
                                    "mesh's models share, so it does not scale on its own",
                                    "deploy the version again with --replicas N")
        if replicas > len(processes):
            model_dir = materialize(version.storage_uri, self.models_dir)
            started = self.servers.of(processes[0]).start(version.name, version.version, model_dir,
                                                          version.model_digest, version.storage_uri,
                                                          replicas - len(processes), len(processes))
            return _served_by(version, processes + tuple(started)), None
        return _served_by(version, processes[:replicas]), _served_by(version, processes[replicas:])

    def details_from(self, data: dict) -> LocalDetails:
        """The processes kept with a version in platform.json."""
        return LocalDetails.from_dict(data)

    def healthy(self, version: Version) -> bool:
        """Every replica answers its readiness probe."""
        return all(self.servers.ready(process) for process in processes_of(version))

    def stop(self, version: Version) -> None:
        """Stop the processes (only those still the servers this platform started)."""
        for process in processes_of(version):
            self.servers.stop(process)

    def deployment_of(self, version: Version) -> LocalDeployment:
        """How a copy of the version is deployed: on its runtime, with as many copies as it has."""
        processes = processes_of(version)
        copies = [process for process in processes if process.role != "forwards"]
        return LocalDeployment(len(copies), processes[0].runtime)


class LocalPlatform:
    """Model versions as KServe model-server processes, routed by a local nginx."""

    READS = frozenset({"name", "storage_uri", "canary_percent", "replicas",  # the request fields it reads
                       "autoscaling", "min_replicas", "max_replicas", "scale_target", "runtime", "runtime_option"})
    SPEC_DEFAULTS = {"model_format": "sklearn"}  # a cluster's field, which the local model server does not read

    @classmethod
    def connect(cls, cluster: ClusterAccess) -> LocalPlatform:
        """The local platform of this state directory (there is no cluster to reach)."""
        return cls()

    @classmethod
    def refuse_unread(cls, given: set[str]) -> None:
        """Refuse a cluster's field: the local platform stands in for the runtime, router and autoscaler."""
        extra = sorted(given - cls.READS)
        if extra:
            raise InvalidInputError(extra[0], "applies to --platform kubernetes only",
                                    "the local platform takes --name, --storage-uri, --canary-percent, --replicas, "
                                    f"--runtime ({' or '.join(LOCAL_RUNTIMES)}) with --runtime-option, and "
                                    "--autoscaling hpa-qps or hpa-cpu with --min-replicas, --max-replicas and "
                                    "--scale-target")

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else state_dir()
        self.state = PlatformState(self.root)
        self.router = NginxRouter(self.root)
        self.servers = LocalServers(self.root)
        self.journal = FileJournal(self.root)
        self.processes = LocalProcesses(self.servers, self.root / "models")
        self.rollout = Rollout(self.processes, self.router, self.state, self.journal)

    def converge(self) -> list[str]:
        """Settle what a killed command left (kill -9 of deploy, promote, rollback or of nginx's master): finish
        or undo the journaled change, stop model servers no record holds, restart a router whose master is
        gone. Skipped while another command holds the state's lock (it is at work). Returns what was done."""
        with self.state.try_locked() as models:
            if models is None:
                return []
            done = [self.rollout.settle(name, models.setdefault(name, ModelRecord())) for name in self.journal.names()]
            recorded = {process.pid for record in models.values() for version in _versions(record)
                        for process in processes_of(version)}
            for pid, serves in self.servers.unrecorded(recorded):
                self.servers.stop_pid(pid)
                done.append(f"stopped model server {serves} (pid {pid}), which no record held")
            if any(not record.empty for record in models.values()):
                done += self.router.recover()
        return [line for line in done if line]

    def deploy(self, request: DeployRequest) -> Deployed:
        """Deploy the request's version (see `deploy_version`); clients reach it and the primary through the
        router, by the track header."""
        spec = request.spec
        scaling = _local_scaling(spec)  # checked before anything starts
        replicas = request.replicas if request.replicas is not None or scaling is None else scaling.min_replicas
        runtime = local_kind_for(spec.runtime)  # checked before anything starts
        self.servers.kind(runtime).configure(spec.runtime_options)  # checked before anything starts
        version = self.deploy_version(spec.name, spec.storage_uri, spec.canary_percent, replicas,
                                      request.allow_same_model, spec.version, request.owner, runtime,
                                      spec.runtime_options)
        if scaling is not None:
            self.autoscale(scaling, seconds_from_env(AUTOSCALER_SYNC_ENV) or HPA_SYNC_PERIOD_S)
        url = self._router_url()
        primary = dict(self.state.records())[spec.name].primary
        return Deployed(version, ClientEndpoint(url, {}), ClientEndpoint(url, {TRACK_HEADER: "canary"}),
                        ClientEndpoint(url, {TRACK_HEADER: "primary"}), primary.storage_uri if primary else "")

    def _router_url(self) -> str:
        """The router's REST listener."""
        return f"http://127.0.0.1:{self.router.ports()['http']}"

    def deploy_version(self, name: str, storage_uri: str, canary_percent: int = 0, replicas: int | None = None,
                       allow_same_model: bool = False, version: str = "", owner: str = "",
                       runtime: str = DEFAULT_LOCAL_RUNTIME, runtime_options: dict[str, str] | None = None) -> Version:
        """Start the version as the canary with `canary_percent` of traffic (all of it on a first deploy),
        served by `replicas` processes (default: `default_replicas()`; on a model mesh: copies, default 1) of the
        local `runtime` with its options. The version is named as it was published (the storage URI's last
        segment) unless `version` names it; `allow_same_model` lets the primary's own model be the canary under
        another name (an A/A rollout); `owner` names the run deploying it."""
        Route(name, Endpoint("-", "-", "-"), canary_weight=canary_percent).validated()
        self.router.refuse_unusable_state()
        shared = runtime != DEFAULT_LOCAL_RUNTIME  # a pool's runtimes serve the version: one copy unless asked
        replicas = (1 if shared else default_replicas()) if replicas is None else replicas
        _check_replicas(replicas)
        self.servers.kind(runtime)  # an unknown runtime is refused before anything starts
        manifest = read_published_manifest(storage_uri)
        version = version or published_version_name(storage_uri) or manifest.version_id
        self.converge()
        return self.rollout.deploy(Candidate(name, version, manifest.model_digest, storage_uri, canary_percent,
                                             LocalDeployment(replicas, runtime,
                                                             tuple(sorted((runtime_options or {}).items()))),
                                             allow_same_model, owner))

    def analysis_sides(self, name: str, namespace: str = "") -> AnalysisSides:
        """How an analysis reaches the model's canary and its primary through the router (the primary's URL
        "" on a first deploy, when the canary is all there is)."""
        record, canary = self._record_with_canary(name)
        url = self._router_url()
        return AnalysisSides(url, baseline_url=url if record.primary is not None else "",
                             instances=self.processes.deployment_of(canary).replicas,
                             protocols=self.servers.of(processes_of(canary)[0]).protocols)

    def start_baseline(self, name: str, namespace: str = "") -> AnalysisSides:
        """Start a fresh copy of the primary for an analysis, with as many processes as the canary, reachable
        by `x-meshserve-track: baseline` only; return how the analysis reaches both sides."""
        record, canary = self._record_with_canary(name)
        if record.primary is None:
            raise InvalidInputError("name", f"{name} has no primary to copy", "a first deploy is judged on its SLOs")
        primary, instances = record.primary, self.processes.deployment_of(canary).replicas
        copy = Candidate(name, f"{primary.version}-baseline", primary.model_digest, primary.storage_uri, 0,
                         LocalDeployment(instances, self.processes.deployment_of(primary).runtime),
                         allow_same_model=True)
        version = self.rollout.start_baseline(name, copy)
        url = self._router_url()
        return AnalysisSides(url, baseline_url=url, baseline_headers=(f"{TRACK_HEADER}: baseline",),
                             protocols=self.servers.of(processes_of(canary)[0]).protocols,
                             instances=instances, baseline_version=version.version)

    def stop_baseline(self, name: str, namespace: str = "") -> None:
        """Remove the analysis baseline, if any."""
        self.rollout.stop_baseline(name)

    def _record_with_canary(self, name: str) -> tuple[ModelRecord, Version]:
        """The model's record and its canary (refused when there is none)."""
        record = dict(self.state.records()).get(name)
        if record is None or record.canary is None:
            raise InvalidInputError("name", f"{name} has no canary to analyse", "deploy a new version first")
        return record, record.canary

    def promote(self, model: ModelRef, owner: str = "", take_over: bool = False,
                outcome: Progress | None = None) -> Version:
        """Make the (healthy) canary the primary with all traffic; stop the old primary once drained (`owner`: only
        if that run deployed the canary; `take_over`: a person acting on a live run's rollout; `outcome`: a
        progressive rollout's final progress)."""
        self.converge()
        return self.rollout.promote(model.name, owner, take_over, outcome)

    def rollback(self, model: ModelRef, owner: str = "", take_over: bool = False,
                 outcome: Progress | None = None) -> Version | None:
        """Send all traffic back to the (healthy) primary and stop the canary (with no primary, remove the model;
        `owner`: only if that run deployed the canary; `take_over`: a person acting on a live run's rollout)."""
        self.converge()
        return self.rollout.rollback(model.name, owner, take_over, outcome)

    def renew(self, model: ModelRef, owner: str) -> None:
        """Extend the owner's lease on the model's rollout."""
        self.rollout.renew(model.name, owner)

    def hold(self, model: ModelRef, owner: str, outcome: Progress | None = None) -> None:
        """Leave the owner's canary for a person."""
        self.rollout.hold(model.name, owner, outcome)

    def set_weight(self, model: ModelRef, percent: int, owner: str = "") -> None:
        """Give the canary `percent` of the traffic through nginx (after settling what a killed command left)."""
        self.converge()
        self.rollout.set_weight(model.name, percent, owner)

    def scale(self, model: ModelRef, replicas: int, track: str = "primary") -> Version:
        """Serve the track's version by `replicas` processes: new ones join the router once ready; removed ones
        leave it first, then stop (nginx retries a request a stopping replica drops on another). Returns the
        version as it now serves; nothing changes when it already has that many."""
        _check_replicas(replicas)
        self.converge()
        current = dict((dict(self.state.records()).get(model.name) or ModelRecord()).tracks()).get(track)
        if current is None:
            raise InvalidInputError("name", f"{model.name} has no {track}", "deploy it first")
        if len(processes_of(current)) == replicas:
            return current
        resized, retired = self.processes.resized(current, replicas)
        try:
            self.rollout.rescale(model.name, track, resized, retired)
        except PlatformError:  # refused before any change: the processes it started serve nothing (an interrupted
            if retired is None:  # change is settled by the next command, which stops processes no record holds)
                self.processes.stop(_served_by(current, processes_of(resized)[len(processes_of(current)):]))
            raise
        return resized

    def autoscale(self, target: ScalingTarget, sync_period_s: float = HPA_SYNC_PERIOD_S) -> int:
        """Keep the model's autoscaling target and run the autoscaler beside the router (started if it is not
        running; its QPS comes from the router's live metrics, started too); returns the autoscaler's PID."""
        from components.platform.autoscaler import AutoscalerProcess

        if target.metric == "hpa-qps":
            self.metrics_address()
        return AutoscalerProcess(self.root).configure(target, sync_period_s)

    def progress(self, model: ModelRef) -> Progress | None:
        """The progressive rollout kept in platform.json with the model's record."""
        record = dict(self.state.records()).get(model.name)
        return record.progress if record else None

    def save_progress(self, model: ModelRef, progress: Progress) -> None:
        """Keep the progress with the canary's record."""
        self.rollout.save_progress(model.name, progress)

    def approve(self, model: ModelRef) -> Progress:
        """Open the canary's confirm-promotion gate."""
        return self.rollout.approve(model.name)

    def workload(self, model: ModelRef, track: str) -> str:
        """The version's name: the router's telemetry labels each version's requests with it."""
        record = dict(self.state.records()).get(model.name) or ModelRecord()
        version = dict(record.tracks()).get(track)
        if version is None:
            raise InvalidInputError("name", f"{model.name} has no {track}", "deploy it first")
        return version.version

    def metrics_address(self) -> str:
        """The local Prometheus over the router's per-request telemetry (started, with its exporter, if needed)."""
        from components.telemetry.local import LocalTelemetry

        return LocalTelemetry(self.root).ensure(self.router)

    def status(self, namespace: str = "") -> PlatformStatus:
        """The router's listeners and, per model, each version's weight as nginx's config in force gives it, the
        health of each of its processes, and any drift from the record; after settling what a killed command
        left (`recovered` says what that was)."""
        recovered = tuple(self.converge())
        records = dict(self.state.records())
        ports = self.router.ports() if records else {}
        listeners = (("http", "http://127.0.0.1:{}"), ("grpc", "127.0.0.1:{}"),
                     ("l4", "127.0.0.1:{}" if self.router.stream_enabled() else ""))
        gateway = {kind: form.format(ports[kind]) for kind, form in listeners if ports and form}
        models = tuple(self._model_status(name, record, gateway.get("http", "")) for name, record in records.items())
        placement = self.servers.mesh.placement()
        routing, runtimes = (placement[0].routing, tuple(
            SharedRuntimeStatus(item.runtime.label, item.runtime.pid, item.runtime.address, item.holds, item.forwards)
            for item in placement[1])) if placement else ("", ())
        return PlatformStatus(models, gateway, self.router.pid(), recovered, routing, runtimes)

    def _model_status(self, name: str, record: ModelRecord, url: str) -> ModelStatus:
        live = self._live_split(name, [version for track, version in record.tracks() if track != "baseline"])
        versions = tuple(self._version_status(track, version, live.get(version.version, 0))
                         for track, version in record.tracks())
        return ModelStatus(name, ClientEndpoint(url, model_headers(name)), versions,
                           drift_text("nginx's config gives", live, record.routed_weights()),
                           rollout=record.lease_text(time.time()), progress=record.progress)

    def _live_split(self, name: str, versions: list[Version]) -> dict[str, int]:
        """Each version's share (percent) of the model's traffic in nginx's config in force."""
        weights = self.router.live_weights(name)
        totals = {version.version: sum(weights.get(address, 0) for address in version.endpoint.addresses("http"))
                  for version in versions}
        whole = sum(totals.values())
        return {version: round(100 * total / whole) if whole else 0 for version, total in totals.items()}

    def routing_spec(self) -> RoutingSpec:
        """The routes in force: the spec the router renders (and a cluster's mesh objects render from)."""
        return self.router.spec()

    def down(self) -> list[str]:
        """Stop every process this state directory started, and the router.

        A process is this directory's only when it carries the directory's identity and its recorded start
        time (components/processes), so a copied state directory never stops the live platform. With a state
        file that cannot be read, it still stops the model servers this directory started and the router, and
        moves the file aside.
        """
        stopped = self._stop_autoscaler()  # first: it would scale what is being stopped
        try:
            return stopped + self._down()
        except PlatformError:
            return stopped + self._down_without_state()

    def _down(self) -> list[str]:
        stopped = []
        with self.state.locked() as models:
            for name, record in models.items():
                for version in _versions(record):
                    processes = [process for process in processes_of(version) if self.servers.owns(process)]
                    for process in processes:
                        self.servers.stop(process)
                    if processes:
                        pids = ", ".join(str(process.pid) for process in processes)
                        stopped.append(f"{name} {version.version} (pid {pids})")
                record.primary = record.canary = record.baseline = None
            stopped += self._stop_unrecorded()
            self.journal.file.unlink(missing_ok=True)
            pid = self.router.pid()
            self.router.stop()
            if pid:
                stopped.append(f"router (pid {pid})")
        return stopped + self._stop_telemetry()

    def _stop_autoscaler(self) -> list[str]:
        from components.platform.autoscaler import AutoscalerProcess

        return AutoscalerProcess(self.root).stop()

    def _stop_telemetry(self) -> list[str]:
        from components.telemetry.local import LocalTelemetry

        return LocalTelemetry(self.root).stop()

    def _down_without_state(self) -> list[str]:
        stopped = self._stop_unrecorded()
        pid = self.router.pid()
        self.router.stop()
        if pid:
            stopped.append(f"router (pid {pid})")
        aside = self.state.file.with_name(f"platform.json.unreadable-{int(time.time())}")
        self.state.file.rename(aside)
        return stopped + self._stop_telemetry() + [f"the unreadable state file, moved to {aside}"]

    def _stop_unrecorded(self) -> list[str]:
        stopped = []
        for pid, serves in self.servers.every_server():
            self.servers.stop_pid(pid)
            stopped.append(f"model server {serves} (pid {pid})")
        return stopped

    def _version_status(self, track: str, version: Version, weight: int) -> VersionStatus:
        instances = tuple(InstanceStatus(p.pid, f"127.0.0.1:{p.http_port}", f"127.0.0.1:{p.grpc_port}",
                                         self.servers.ready(p), p.role) for p in processes_of(version))
        return VersionStatus(track, version.version, weight, all(i.ready for i in instances), version.storage_uri,
                             instances, version.owner)


def _local_scaling(spec: DeploymentSpec) -> ScalingTarget | None:
    """The spec's autoscaling as the local autoscaler runs it (None: a fixed size); KPA is a cluster's."""
    from components.autoscaling.base import FixedSize
    from components.platform.autoscaler import METRICS, ScalingTarget

    scaling = spec.autoscaling.resolved()
    if scaling.kind == FixedSize.kind:
        return None
    if scaling.kind not in METRICS:
        raise InvalidInputError("autoscaling", f"{scaling.kind} does not run on the local platform",
                                "use hpa-qps or hpa-cpu here (a cluster runs kpa)")
    return ScalingTarget(spec.name, scaling.kind, scaling.min_replicas, scaling.max_replicas, float(scaling.target),
                         target_source=scaling.target_source or "given").validated()


def _check_replicas(replicas: int) -> None:
    """A replica count the local platform runs."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidInputError("replicas", f"{replicas} is out of range", f"pass 1 to {MAX_REPLICAS}")


def _endpoint(version: str, processes: Sequence[RunningVersion]) -> Endpoint:
    """The router's endpoint for a version's processes: the first replica, then the rest."""
    addresses = [(f"127.0.0.1:{p.http_port}", f"127.0.0.1:{p.grpc_port}") for p in processes]
    return Endpoint(version, *addresses[0], more_replicas=tuple(addresses[1:]))


def _served_by(version: Version, processes: tuple[RunningVersion, ...]) -> Version:
    """The same version, served by `processes`."""
    return dataclasses.replace(version, endpoint=_endpoint(version.version, processes),
                               details=LocalDetails(processes))


def _versions(record: ModelRecord) -> list[Version]:
    """The versions a record holds."""
    return [version for _, version in record.tracks()]
