"""The one seam between the steps and a platform: what every platform (local, kubernetes) does, with typed
requests. Steps and commands call these through the registry (components/platform/registry.py) and never ask
which platform they hold."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from components.deployment.spec import DeploymentSpec
from components.rollout.contract import AnalysisSides, Version
from components.rollout.progress import Progress
from components.routing.spec import ClientEndpoint


@dataclass(frozen=True)
class ModelRef:
    """A model on a platform: its name and namespace (the local platform has one namespace, and ignores it)."""

    name: str
    namespace: str = "default"


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster: kubeconfig and context (both empty: the pod's own), and how long to wait."""

    kubeconfig: str = ""
    context: str = ""
    ready_timeout_s: float = 300.0


@dataclass(frozen=True)
class DeployRequest:
    """A published version to bring up as the canary, and how a cluster serves it (the local platform stands in
    for the runtime, router and autoscaler with its model servers and nginx, and reads name, version, storage and
    weight only)."""

    spec: DeploymentSpec
    replicas: int | None = None  # local: model-server processes (a cluster scales by spec.autoscaling)
    allow_same_model: bool = False  # an A/A rollout: the primary's own model under another version name
    owner: str = ""  # the run that deploys it; only that run's steps may finish it


@dataclass(frozen=True)
class Deployed:
    """What a deploy brought up: the version; how clients reach the model (split by the router), the candidate
    and the primary beside it (by their tracks); and the primary's storage ("" on a first deploy)."""

    version: Version
    clients: ClientEndpoint
    candidate: ClientEndpoint
    baseline: ClientEndpoint
    baseline_storage_uri: str = ""


@dataclass(frozen=True)
class InstanceStatus:
    """One serving instance of a version that the platform sees itself (a local model-server process)."""

    pid: int
    http: str
    grpc: str
    ready: bool
    role: str = ""  # on a model mesh's shared runtime: "holds" (loaded there) or "forwards" (to a holder)


@dataclass(frozen=True)
class VersionStatus:
    """One version as it is live: its track, the weight the router gives it now, whether it is ready, and its
    model's storage (`instances`: the processes, where the platform runs them itself)."""

    track: str
    version: str
    weight: int
    ready: bool
    storage_uri: str
    instances: tuple[InstanceStatus, ...] = ()
    owner: str = ""  # the run that deployed it ("" by hand)


@dataclass(frozen=True)
class ModelStatus:
    """One model as it is live: how clients reach it, its versions, and where the live routes differ from the
    rollout record (`drift`, e.g. weights edited by hand) or the record cannot be read (`error`)."""

    name: str
    clients: ClientEndpoint | None = None
    versions: tuple[VersionStatus, ...] = ()
    drift: str = ""
    error: str = ""
    rollout: str = ""  # who holds the rollout, and until when ("": nobody)
    progress: Progress | None = None  # the progressive rollout of the canary (or the last one, once it ended)

    def tracks(self) -> dict[str, str]:
        """Track -> version name."""
        return {version.track: version.version for version in self.versions}


@dataclass(frozen=True)
class SharedRuntimeStatus:
    """One runtime of the local model mesh: the versions loaded there and those it forwards to their holders."""

    label: str
    pid: int
    address: str
    holds: tuple[str, ...] = ()
    forwards: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformStatus:
    """Every model on the platform (in one namespace on a cluster), the gateway's listeners where the platform
    runs one itself (the local router: its addresses and pid), and what settling a killed command did first."""

    models: tuple[ModelStatus, ...] = ()
    gateway: dict[str, str] = field(default_factory=dict)
    gateway_pid: int | None = None
    recovered: tuple[str, ...] = ()
    mesh_routing: str = ""  # the local model mesh's routing ("" when there is no mesh)
    mesh_runtimes: tuple[SharedRuntimeStatus, ...] = ()  # its runtimes, each with its placement

    def model(self, name: str) -> ModelStatus | None:
        """The model's status (None when it is not deployed)."""
        return next((model for model in self.models if model.name == name), None)

    def to_dict(self) -> dict:
        """The JSON form (`status --json`)."""
        return asdict(self)


def drift_text(router_says: str, live: dict[str, int], recorded: dict[str, int]) -> str:
    """What differs between the weights the router holds and the ones the record gives ("" when they agree);
    `router_says` begins the sentence ("nginx's config gives")."""
    if live == recorded:
        return ""

    def listed(weights: dict[str, int]) -> str:
        return ", ".join(f"{version} {weight}%" for version, weight in weights.items()) or "nothing"

    return f"{router_says} {listed(live)}; the record gives {listed(recorded)}"


class Platform(Protocol):
    """What every step and command asks of a platform."""

    SPEC_DEFAULTS: dict[str, str]  # spec fields the platform fills when not given (it does not read them)

    @classmethod
    def connect(cls, cluster: ClusterAccess) -> Platform:
        """The platform, reached as `cluster` says (the local platform has nothing to reach)."""

    @classmethod
    def refuse_unread(cls, given: set[str]) -> None:
        """Refuse, naming it, a request field given that this platform would not read."""

    def deploy(self, request: DeployRequest) -> Deployed:
        """Start the version beside the primary; it gets the spec's canary_percent once ready (all on a first
        deploy). A failed deploy leaves the primary serving as it was."""

    def status(self, namespace: str) -> PlatformStatus:
        """Every model's versions as they are live (weights from the router, readiness from the workloads),
        with any drift from the rollout record."""

    def promote(self, model: ModelRef, owner: str = "", take_over: bool = False,
                outcome: Progress | None = None) -> Version:
        """Make the (healthy) canary the primary with all traffic (`owner`: only if that run deployed it; a person
        needs `take_over` while the run's lease is live; `outcome`: a progressive rollout's final progress)."""

    def rollback(self, model: ModelRef, owner: str = "", take_over: bool = False,
                 outcome: Progress | None = None) -> Version | None:
        """Remove the canary; the primary keeps all traffic (None when no version is left)."""

    def renew(self, model: ModelRef, owner: str) -> None:
        """The owner is still at work on its rollout: extend its lease."""

    def hold(self, model: ModelRef, owner: str, outcome: Progress | None = None) -> None:
        """The owner's run ends leaving its canary for a person to promote or roll back."""

    def set_weight(self, model: ModelRef, percent: int, owner: str = "") -> None:
        """Give the canary `percent` of the traffic (a progressive rollout's step; the owner's lease is renewed)."""

    def progress(self, model: ModelRef) -> Progress | None:
        """The progressive rollout kept with the model's record (None when there is none)."""

    def save_progress(self, model: ModelRef, progress: Progress) -> None:
        """Keep the progressive rollout's progress with the record of the canary it drives."""

    def approve(self, model: ModelRef) -> Progress:
        """A person's yes at the canary's confirm-promotion gate."""

    def workload(self, model: ModelRef, track: str) -> str:
        """The workload name the metrics of a track's version (primary, canary) carry."""

    def metrics_address(self) -> str:
        """The Prometheus the platform runs itself over its live traffic ("" when it runs none)."""

    def analysis_sides(self, name: str, namespace: str) -> AnalysisSides:
        """How an analysis reaches the model's canary and its primary."""

    def start_baseline(self, name: str, namespace: str) -> AnalysisSides:
        """Start a fresh copy of the primary beside the canary, reached by its track only."""

    def stop_baseline(self, name: str, namespace: str) -> None:
        """Remove the analysis baseline, if any."""
