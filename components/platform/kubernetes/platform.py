"""KubernetesPlatform: the Platform protocol over a cluster's objects, with the same rollout rules as the local
platform (components/rollout/rules.py) over its parts: ClusterVersions (versions.py), ClusterRoutes (routes.py) and
ClusterState (state.py). What a runtime or a router knows (its objects, how clients reach it, the weights it holds)
is asked of it; nothing here names one."""

from __future__ import annotations

import time
from dataclasses import replace

from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError, MeshserveError, PlatformError
from components.kube.client import Kube
from components.platform.kubernetes.render import check_deployment
from components.platform.kubernetes.routes import ClusterRoutes
from components.platform.kubernetes.state import ClusterState
from components.platform.kubernetes.versions import READY_TIMEOUT_S, ClusterVersions, spec_of
from components.platform.protocol import (
    ClusterAccess,
    Deployed,
    DeployRequest,
    ModelRef,
    ModelStatus,
    PlatformStatus,
    VersionStatus,
    drift_text,
)
from components.rollout.contract import AnalysisSides, Candidate, ModelRecord, Version
from components.rollout.progress import Progress
from components.rollout.rules import Rollout, check_deployable
from components.routing.registry import mesh_routes_for
from components.routing.spec import ClientEndpoint
from components.runtimes.base import runtime_for


class KubernetesPlatform:
    """deploy / promote / rollback / status on a cluster, with the same rules as the local platform."""

    UNREAD = {"replicas": "on kubernetes pass --min-replicas and --max-replicas"}  # request fields it never reads
    SPEC_DEFAULTS: dict[str, str] = {}

    def __init__(self, kube: Kube, ready_timeout_s: float = READY_TIMEOUT_S):
        self.kube = kube
        self.versions = ClusterVersions(kube, ready_timeout_s)

    @classmethod
    def connect(cls, cluster: ClusterAccess) -> KubernetesPlatform:
        """The platform on the cluster the kubeconfig (or the pod's own account) reaches."""
        from components.kube.client import connect

        return cls(connect(cluster.kubeconfig, cluster.context), cluster.ready_timeout_s)

    @classmethod
    def refuse_unread(cls, given: set[str]) -> None:
        """Refuse a request field this platform would not read (before a spec is read or a cluster reached)."""
        for name in sorted(given & cls.UNREAD.keys()):
            raise InvalidInputError(name, "applies to --platform local only", cls.UNREAD[name])

    def deploy(self, request: DeployRequest) -> Deployed:
        """Deploy the request's spec (see `deploy_spec`); clients reach the canary and the primary by their
        tracks' headers (the primary as its own spec says), and the primary's storage is read from the record
        it is kept in."""
        self.refuse_unread(set() if request.replicas is None else {"replicas"})
        version = self.deploy_spec(request.spec, request.allow_same_model, request.owner)
        spec = spec_of(version)
        primary = ClusterState(self.kube, spec.namespace).record(spec.name).primary
        baseline = self.client_endpoint(spec_of(primary) if primary else spec, "primary")
        return Deployed(version, self.client_endpoint(spec), self.client_endpoint(spec, "canary"), baseline,
                        primary.storage_uri if primary else "")

    def deploy_spec(self, spec: DeploymentSpec, allow_same_model: bool = False, owner: str = "") -> Version:
        """Start the spec's version beside the primary; it gets `canary_percent` once ready (all on a first deploy).

        The primary is the one recorded on the cluster. Everything is checked before anything is written.
        `allow_same_model` lets the primary's own model be the canary under another version (an A/A rollout);
        `owner` names the run deploying it.
        """
        spec = _with_version(spec).validated()
        state = ClusterState(self.kube, spec.namespace)
        record = state.record(spec.name)
        digest = _model_digest(spec)
        check_deployable(Candidate(spec.name, spec.version, digest, spec.storage_uri,
                                   allow_same_model=allow_same_model), record, time.time())
        spec = check_deployment(_beside(spec, record))  # all before the lease: a refused deploy writes nothing
        candidate = Candidate(spec.name, spec.version, digest, spec.storage_uri, spec.canary_percent, spec,
                              allow_same_model, owner)
        return self._rollout(spec, state).deploy(candidate)

    def promote(self, model: ModelRef, owner: str = "", take_over: bool = False,
                outcome: Progress | None = None) -> Version:
        """All traffic to the (ready) canary, then delete the old primary's objects (`owner`: only that run's;
        `take_over`: a person acting on a live run's rollout; `outcome`: a progressive rollout's final progress)."""
        state = ClusterState(self.kube, model.namespace)
        return self._rollout(self._spec(state, model.name), state).promote(model.name, owner, take_over, outcome)

    def rollback(self, model: ModelRef, owner: str = "", take_over: bool = False,
                 outcome: Progress | None = None) -> Version | None:
        """Restore the routes recorded before the rollout, then delete the canary's objects (`owner`: only that
        run's; `take_over`: a person acting on a live run's rollout)."""
        state = ClusterState(self.kube, model.namespace)
        return self._rollout(self._spec(state, model.name), state).rollback(model.name, owner, take_over, outcome)

    def renew(self, model: ModelRef, owner: str) -> None:
        """Extend the owner's lease on the model's rollout (kept in its rollout record)."""
        state = ClusterState(self.kube, model.namespace)
        self._rollout(self._spec(state, model.name), state).renew(model.name, owner)

    def hold(self, model: ModelRef, owner: str, outcome: Progress | None = None) -> None:
        """Leave the owner's canary for a person."""
        state = ClusterState(self.kube, model.namespace)
        self._rollout(self._spec(state, model.name), state).hold(model.name, owner, outcome)

    def set_weight(self, model: ModelRef, percent: int, owner: str = "") -> None:
        """Give the canary `percent` of the traffic in its routing objects (VirtualService weights, or KServe's
        canaryTrafficPercent); nothing is written when that weight is in force."""
        state = ClusterState(self.kube, model.namespace)
        self._rollout(self._spec(state, model.name), state).set_weight(model.name, percent, owner)

    def progress(self, model: ModelRef) -> Progress | None:
        """The progressive rollout kept in the model's rollout ConfigMap."""
        return ClusterState(self.kube, model.namespace).record(model.name).progress

    def save_progress(self, model: ModelRef, progress: Progress) -> None:
        """Keep the progress in the model's rollout ConfigMap."""
        state = ClusterState(self.kube, model.namespace)
        self._rollout(self._spec(state, model.name), state).save_progress(model.name, progress)

    def approve(self, model: ModelRef) -> Progress:
        """Open the canary's confirm-promotion gate."""
        state = ClusterState(self.kube, model.namespace)
        return self._rollout(self._spec(state, model.name), state).approve(model.name)

    def workload(self, model: ModelRef, track: str) -> str:
        """The version's workload as the mesh's telemetry names it: its runtime's predictor Service/Deployment."""
        record = ClusterState(self.kube, model.namespace).record(model.name)
        version = dict(record.tracks()).get(track)
        if version is None:
            raise InvalidInputError("name", f"{model.name} has no {track} in {model.namespace}", "deploy it first")
        spec = spec_of(version)
        return runtime_for(spec.runtime).workload(spec).service

    def metrics_address(self) -> str:
        """None of its own: the mesh's Prometheus is named in the rollout policy (guard.address)."""
        return ""

    def status(self, namespace: str) -> PlatformStatus:
        """Per model: each version's track, the weight its router holds now (the VirtualService's), its workload's
        readiness and storage, how clients reach it, and where the live weights differ from the record."""
        models = []
        for name, record in ClusterState(self.kube, namespace).readable_records():
            if isinstance(record, PlatformError):
                models.append(ModelStatus(name, error=str(record)))
            elif not record.empty:  # an empty record: a deploy killed before it recorded a version
                models.append(self._model_status(name, record))
        return PlatformStatus(tuple(models))

    def _model_status(self, name: str, record: ModelRecord) -> ModelStatus:
        spec = spec_of(_serving(record))
        recorded = record.routed_weights()
        live = ClusterRoutes(self.kube, spec).live_split(list(recorded))
        weights = recorded if live is None else live
        versions = tuple(VersionStatus(track, version.version, weights.get(version.version, 0),
                                       self.versions.healthy(version), version.storage_uri, owner=version.owner)
                         for track, version in record.tracks())
        drift = "" if live is None else drift_text("the routing objects on the cluster give", live, recorded)
        return ModelStatus(name, self.client_endpoint(spec), versions, drift, rollout=record.lease_text(time.time()),
                           progress=record.progress)

    def analysis_sides(self, name: str, namespace: str) -> AnalysisSides:
        """How an analysis reaches the model's canary and its primary (the primary's URL "" on a first deploy)."""
        record, canary_version = self._record_with_canary(name, namespace)
        canary = spec_of(canary_version)
        track = "canary" if record.primary else ""
        candidate = self.client_endpoint(canary, track)
        runtime = runtime_for(canary.runtime)
        sides = AnalysisSides(candidate.url, tuple(candidate.header_lines()), instances=_instances(canary),
                              protocols=runtime.protocols, candidate_model=runtime.served_model(canary, track))
        if record.primary is None:
            return sides
        primary = spec_of(record.primary)  # reached as the primary's own spec says, whatever the canary's router
        baseline = self.client_endpoint(primary, "primary")
        return replace(sides, baseline_url=baseline.url, baseline_headers=tuple(baseline.header_lines()),
                       baseline_model=runtime.served_model(primary, "primary"))

    def start_baseline(self, name: str, namespace: str) -> AnalysisSides:
        """Apply a fresh copy of the primary (its model, the canary's resources and placement, as many replicas)
        under `<primary>-baseline`, routed by the mesh for `x-meshserve-track: baseline` only, and wait until
        it is ready; return how the analysis reaches the canary and the copy."""
        state = ClusterState(self.kube, namespace)
        record, canary_version = self._record_with_canary(name, namespace)
        canary = spec_of(canary_version)
        if record.primary is None:
            raise InvalidInputError("name", f"{name} has no primary to copy", "a first deploy is judged on its SLOs")
        if not mesh_routes_for(canary.router).side_by_side or runtime_for(canary.runtime).shared_routing:
            raise InvalidInputError("policy.analysis.baseline", f"router {canary.router} with runtime "
                                    f"{canary.runtime} cannot route a copy of the primary beside the canary",
                                    "route with istio or asm, or set analysis.baseline: primary")
        primary = record.primary
        copy = replace(canary, version=f"{primary.version}-baseline", storage_uri=primary.storage_uri,
                       primary_version="", baseline_version="", canary_percent=0).validated()
        candidate = Candidate(name, copy.version, primary.model_digest, primary.storage_uri, 0, copy,
                              allow_same_model=True)
        self._rollout(canary, state).start_baseline(name, candidate)
        sides = self.analysis_sides(name, namespace)
        baseline = self.client_endpoint(canary, "baseline")
        return replace(sides, baseline_url=baseline.url, baseline_headers=tuple(baseline.header_lines()),
                       baseline_version=copy.version)

    def stop_baseline(self, name: str, namespace: str) -> None:
        """Delete the analysis baseline's objects and its route, if the model has one."""
        state = ClusterState(self.kube, namespace)
        record = state.record(name)
        if record.baseline is not None:
            self._rollout(self._spec(state, name), state).stop_baseline(name)

    def _record_with_canary(self, name: str, namespace: str) -> tuple[ModelRecord, Version]:
        """The model's record and its canary (refused when there is none)."""
        record = ClusterState(self.kube, namespace).record(name)
        if record.canary is None:
            raise InvalidInputError("name", f"{name} has no canary to analyse in {namespace}",
                                    "deploy a new version first")
        return record, record.canary

    def client_endpoint(self, spec: DeploymentSpec, track: str = "") -> ClientEndpoint:
        """The URL and headers a client uses, as the model's router says (with a `track`, primary or canary: the
        headers that reach that version only)."""
        return mesh_routes_for(spec.router).client(spec, runtime_for(spec.runtime), track,
                                                   self.versions.workload_object(spec))

    def _rollout(self, spec: DeploymentSpec, state: ClusterState) -> Rollout:
        return Rollout(self.versions, ClusterRoutes(self.kube, spec), state)

    def _spec(self, state: ClusterState, name: str) -> DeploymentSpec:
        record = state.record(name)
        if record.empty:
            raise InvalidInputError("name", f"no model named {name!r} is deployed in {state.namespace}",
                                    "deploy it first, or pass its --namespace")
        return spec_of(_serving(record))


def _serving(record: ModelRecord) -> Version:
    """The version whose spec describes the model now: the canary during a rollout, else the primary."""
    version = record.canary or record.primary
    if version is None:
        raise ValueError("an empty record has no serving version")
    return version


def _beside(spec: DeploymentSpec, record: ModelRecord) -> DeploymentSpec:
    """The spec with the primary recorded on the cluster (a first deploy takes all traffic)."""
    primary = record.primary.version if record.primary else ""
    if spec.primary_version and spec.primary_version != primary:
        raise InvalidInputError("primary_version", f"{spec.name}'s primary on the cluster is {primary or 'no version'}",
                                "drop --primary-version: the platform reads it from the cluster")
    router = mesh_routes_for(spec.router)
    if primary and not spec.side_by_side and not router.in_place:
        raise InvalidInputError("router", f"runtime {spec.runtime} with router {spec.router} updates one object in "
                                "place, so a candidate cannot run beside the primary",
                                "route with istio or asm (kserve-canary on KServe Serverless) to roll versions out")
    if not primary and router.splits_traffic:  # no split: a weight stays bad input, for the checks to refuse
        return replace(spec, primary_version="", canary_percent=0)
    return replace(spec, primary_version=primary if router.side_by_side or router.in_place else "")


def _with_version(spec: DeploymentSpec) -> DeploymentSpec:
    if spec.version:
        return spec
    try:
        from components.storage.published import read_published_manifest

        return replace(spec, version=read_published_manifest(spec.storage_uri).version_id)
    except MeshserveError:
        raise InvalidInputError("version", "the version is not given and the model's manifest is out of reach",
                                "pass --version (the upload step's version name)") from None


def _model_digest(spec: DeploymentSpec) -> str:
    """The model's digest when its manifest is reachable from here (a step pod with the claim or the store's
    Secret); else the version name stands in, and the runtime's controller reports a location it cannot load."""
    try:
        from components.storage.published import read_published_manifest

        return read_published_manifest(spec.storage_uri).model_digest
    except MeshserveError:
        return f"version:{spec.version}"


def _instances(spec: DeploymentSpec) -> int:
    """How many instances serve a version at least (its minimum replicas)."""
    return max(1, spec.autoscaling.min_replicas)
