"""The Kubernetes platform: the shared rollout rules over a cluster's objects.

- Versions (the runtime): a version's objects (InferenceService, ModelServer or Deployment + Service,
  its HPA) are server-side applied, then watched until the runtime's controller reports them ready,
  with a deadline; if they never are, they are deleted and the error carries the last conditions.
- Routes (the router): the model's routing objects (Gateway, DestinationRules, VirtualService) are
  applied for the route in force; routing objects of versions no longer routed are deleted. A
  snapshot holds the objects' specs as they were, so a rollback puts them back exactly.
- State: a ConfigMap per model, `meshserve-rollout-NAME`, holds the record (primary, canary), the
  routes recorded before the rollout (the `meshserve.io/routes-before` annotation, as flagger keeps
  the original spec), and a lease that lets one rollout of a model run at a time. Its writes carry
  the resourceVersion read; a conflict is read again and retried.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from components.deployment.render import check_deployment, routing_objects, version_objects
from components.deployment.spec import SIDE_BY_SIDE_ROUTERS, DeploymentSpec, spec_from_mapping
from components.errors import InvalidInputError, MeshserveError, PlatformError
from components.kube.client import Kube
from components.platform.protocol import ClientEndpoint, Deployed, DeployRequest, ModelRef
from components.rollout.contract import AnalysisSides, Candidate, ModelRecord, Version
from components.rollout.rules import Rollout, check_deployable
from components.routing.spec import TRACK_HEADER, Endpoint, Route
from components.runtimes.base import runtime_for

READY_TIMEOUT_S = 300.0
VERSION_LABEL = "meshserve.io/version"
ROUTES_BEFORE = "meshserve.io/routes-before"
LEASE_HOLDER = "meshserve.io/lease-holder"
LEASE_SECONDS = 900.0
ROUTING_KINDS = ("VirtualService", "DestinationRule", "Gateway")


class ClusterVersions:
    """The rollout's runtime on a cluster: each version's objects, applied and watched until ready."""

    def __init__(self, kube: Kube, ready_timeout_s: float = READY_TIMEOUT_S):
        self.kube = kube
        self.ready_timeout_s = ready_timeout_s

    def start(self, candidate: Candidate) -> Version:
        """Apply the version's objects and wait until its controller says ready; else delete them and raise."""
        spec = candidate.spec
        if not isinstance(spec, DeploymentSpec):
            raise TypeError(f"a cluster candidate carries a DeploymentSpec, not {type(spec).__name__}")
        runtime = runtime_for(spec.runtime)
        try:
            for obj in version_objects(spec):
                self.kube.apply(obj)
            api_version, kind, name = runtime.workload_ref(spec)
            self.kube.wait(api_version, kind, name, spec.namespace, runtime.readiness, self.ready_timeout_s)
        except BaseException:
            self._delete(spec)
            raise
        workload = runtime.workload(spec)
        host = f"{workload.service}.{spec.namespace}.svc.cluster.local"
        endpoint = Endpoint(spec.version or "-", f"{host}:{workload.rest_port}", f"{host}:{workload.grpc_port}")
        return Version(spec.name, spec.version, candidate.model_digest, spec.storage_uri, endpoint,
                       {"spec": spec.to_mapping()})

    def healthy(self, version: Version) -> bool:
        """The version's workload object reports ready now."""
        spec = spec_of(version)
        runtime = runtime_for(spec.runtime)
        obj = self.kube.get(*runtime.workload_ref(spec), spec.namespace)
        return obj is not None and runtime.readiness(obj).ready

    def stop(self, version: Version) -> None:
        """Delete the version's own objects (shared ones, such as a storage claim, stay)."""
        self._delete(spec_of(version))

    def _delete(self, spec: DeploymentSpec) -> None:
        for obj in reversed(version_objects(spec)):
            if obj["metadata"].get("labels", {}).get(VERSION_LABEL) == spec.version:
                meta = obj["metadata"]
                self.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))


class ClusterRoutes:
    """The rollout's router on a cluster: one model's routing objects, as rendered for the route in force."""

    def __init__(self, kube: Kube, spec: DeploymentSpec):
        self.kube = kube
        self.spec = spec

    def reconcile(self, route: Route) -> None:
        """Apply the model's routing objects for the route; delete those of versions it no longer routes."""
        wanted = routing_objects(self._spec_for(route))
        for obj in wanted:
            self.kube.apply(obj)
        self._delete_unless(wanted)

    def finalize(self, name: str) -> None:
        """Delete the model's routing objects."""
        self._delete_unless([])

    def snapshot(self, name: str) -> dict | None:
        """The model's routing objects' specs as they are now (None when it has none)."""
        objects = [{"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                    "metadata": {key: obj["metadata"][key] for key in ("name", "namespace", "labels")
                                 if key in obj["metadata"]}, "spec": obj["spec"]} for obj in self._current()]
        return {"objects": objects} if objects else None

    def restore(self, name: str, snapshot: dict | None) -> None:
        """Apply the recorded objects as they were; delete the model's routing objects they did not include."""
        recorded = (snapshot or {}).get("objects", [])
        for obj in recorded:
            self.kube.apply(obj)
        self._delete_unless(recorded)

    def _spec_for(self, route: Route) -> DeploymentSpec:
        both = route.primary is not None and route.canary is not None
        routed = route.canary or route.primary
        if routed is None:
            raise ValueError(f"the route of {route.name} reaches no version")
        return replace(self.spec, version=_named(routed.version),
                       primary_version=_named(route.primary.version) if both and route.primary else "",
                       baseline_version=_named(route.baseline.version) if both and route.baseline else "",
                       canary_percent=route.canary_weight if both else 0)

    def _current(self) -> list[dict]:
        if self.spec.router not in ("istio", "asm") or self.spec.runtime == "modelmesh":
            return []  # no routing objects of the model's own (ModelMesh's are the namespace's)
        selector = f"app.kubernetes.io/managed-by=meshserve,app.kubernetes.io/name={self.spec.name}"
        api_version = "networking.istio.io/v1beta1" if self.spec.router == "asm" else "networking.istio.io/v1"
        return [obj for kind in ROUTING_KINDS
                for obj in self.kube.list(api_version, kind, self.spec.namespace, selector)]

    def _delete_unless(self, keep: list[dict]) -> None:
        kept = {(obj["kind"], obj["metadata"]["name"]) for obj in keep}
        for obj in self._current():
            if (obj["kind"], obj["metadata"]["name"]) not in kept:
                self.kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], self.spec.namespace)


class ClusterState:
    """Each model's rollout record in a ConfigMap, written under a lease with resourceVersion checks."""

    def __init__(self, kube: Kube, namespace: str, lease_wait_s: float = 60.0):
        self.kube = kube
        self.namespace = namespace
        self.lease_wait_s = lease_wait_s
        self.holder = f"{socket.gethostname()}/{os.getpid()}"

    @contextmanager
    def transaction(self, name: str) -> Iterator[ModelRecord]:
        """The model's record under this process's lease; saved (or deleted, when empty) on success."""
        config_map = self._acquire(name)
        record = _record_of(config_map)
        try:
            yield record
        except BaseException:
            self._write(name, _released)
            raise
        self._write(name, lambda current: _stored(current, record))

    def records(self) -> Iterator[tuple[str, ModelRecord]]:
        """Every model's record in the namespace (one that is not a record is an error)."""
        for name, record in self.readable_records():
            if isinstance(record, PlatformError):
                raise record
            yield name, record

    def readable_records(self) -> Iterator[tuple[str, ModelRecord | PlatformError]]:
        """Every model's record in the namespace, or the error saying why its ConfigMap holds none."""
        for config_map in self.kube.list("v1", "ConfigMap", self.namespace,
                                         "app.kubernetes.io/managed-by=meshserve,app.kubernetes.io/component=rollout"):
            name = (config_map["metadata"].get("labels") or {}).get("app.kubernetes.io/name", "?")
            try:
                yield name, _record_of(config_map)
            except PlatformError as problem:
                yield name, problem

    def record(self, name: str) -> ModelRecord:
        """The model's record as stored (empty when none)."""
        return _record_of(self.kube.get("v1", "ConfigMap", _state_name(name), self.namespace))

    def _acquire(self, name: str) -> dict:
        deadline = time.monotonic() + self.lease_wait_s
        while True:
            current = self.kube.get("v1", "ConfigMap", _state_name(name), self.namespace)
            holder = _lease_of(current)
            if holder is None or holder == self.holder:  # free, expired, or ours (a re-run in this process)
                taken = self._try_write(_with_lease(current or _new_state(name, self.namespace), self.holder),
                                        create=current is None)
                if taken is not None:
                    return taken
            elif time.monotonic() > deadline:
                raise PlatformError("lease", f"another rollout of {name} holds it ({holder})",
                                    "wait for it to finish; a crashed one's lease expires after 15 minutes")
            else:
                time.sleep(1.0)

    def _write(self, name: str, change) -> None:
        """Read, change and write back; a 409 (someone wrote in between) is read again and retried."""
        for _ in range(10):
            current = self.kube.get("v1", "ConfigMap", _state_name(name), self.namespace)
            if current is None:
                return
            changed = change(current)
            if changed is None:
                self.kube.delete("v1", "ConfigMap", _state_name(name), self.namespace)
                return
            if self._try_write(changed, create=False) is not None:
                return
        raise PlatformError("state", f"the rollout record of {name} kept changing underneath", "re-run the step")

    def _try_write(self, obj: dict, create: bool) -> dict | None:
        """The written object, or None on a 409 conflict (its resourceVersion was stale, or it exists)."""
        from kubernetes.dynamic.exceptions import ConflictError

        try:
            return self.kube.create(obj) if create else self.kube.replace(obj)
        except ConflictError:
            return None


class KubernetesPlatform:
    """deploy / promote / rollback / status on a cluster, with the same rules as the local platform."""

    def __init__(self, kube: Kube, ready_timeout_s: float = READY_TIMEOUT_S):
        self.kube = kube
        self.versions = ClusterVersions(kube, ready_timeout_s)

    def deploy(self, request: DeployRequest) -> Deployed:
        """Deploy the request's spec (see `deploy_spec`); clients reach the canary and the primary by their
        tracks' headers, and the primary's storage is read from the record it is kept in."""
        if request.replicas is not None:
            raise InvalidInputError("replicas", "applies to --platform local only",
                                    "on kubernetes pass --min-replicas and --max-replicas")
        version = self.deploy_spec(request.spec, request.allow_same_model, request.owner)
        spec = spec_of(version)
        primary = ClusterState(self.kube, spec.namespace).record(spec.name).primary
        return Deployed(version, self.client_endpoint(spec), self.client_endpoint(spec, "canary"),
                        self.client_endpoint(spec, "primary"), primary.storage_uri if primary else "")

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
                                   allow_same_model=allow_same_model), record)
        spec = check_deployment(_beside(spec, record))  # all before the lease: a refused deploy writes nothing
        candidate = Candidate(spec.name, spec.version, digest, spec.storage_uri, spec.canary_percent, spec,
                              allow_same_model, owner)
        return self._rollout(spec, state).deploy(candidate)

    def promote(self, model: ModelRef, owner: str = "") -> Version:
        """All traffic to the (ready) canary, then delete the old primary's objects (`owner`: only that run's)."""
        state = ClusterState(self.kube, model.namespace)
        return self._rollout(self._spec(state, model.name), state).promote(model.name, owner)

    def rollback(self, model: ModelRef, owner: str = "") -> Version | None:
        """Restore the routes recorded before the rollout, then delete the canary's objects (`owner`: only that
        run's)."""
        state = ClusterState(self.kube, model.namespace)
        return self._rollout(self._spec(state, model.name), state).rollback(model.name, owner)

    def status(self, namespace: str) -> dict:
        """Per model: each version's track, weight, readiness and storageUri, and how clients reach it."""
        report: dict = {}
        for name, record in ClusterState(self.kube, namespace).readable_records():
            if isinstance(record, PlatformError):
                report[name] = {"error": str(record), "versions": []}
                continue
            if record.empty:  # a deploy killed before it recorded a version
                continue
            spec = spec_of(_serving(record))
            client = self.client_endpoint(spec)
            weights = dict(zip(("primary", "canary"), record.route(name, _canary_weight(record)).weights(),
                               strict=True))
            weights["baseline"] = 0
            tracks = (("primary", record.primary), ("canary", record.canary), ("baseline", record.baseline))
            report[name] = {"url": client.url, "headers": client.headers, "versions": [
                {"track": track, "version": version.version,
                 "weight": weights[track] if record.primary or track == "baseline" else 100,
                 "ready": self.versions.healthy(version), "storage_uri": version.storage_uri}
                for track, version in tracks if version]}
        return report

    def analysis_sides(self, name: str, namespace: str) -> AnalysisSides:
        """How an analysis reaches the model's canary and its primary (the primary's URL "" on a first deploy)."""
        record, canary_version = self._record_with_canary(name, namespace)
        canary = spec_of(canary_version)
        candidate = self.client_endpoint(canary, "canary" if record.primary else "")
        if record.primary is None:
            return AnalysisSides(candidate.url, tuple(candidate.header_lines()), instances=_instances(canary))
        baseline = self.client_endpoint(canary, "primary")
        return AnalysisSides(candidate.url, tuple(candidate.header_lines()), baseline.url,
                             tuple(baseline.header_lines()), _instances(canary))

    def start_baseline(self, name: str, namespace: str) -> AnalysisSides:
        """Apply a fresh copy of the primary (its model, the canary's resources and placement, as many replicas)
        under `<primary>-baseline`, routed by the mesh for `x-meshserve-track: baseline` only, and wait until
        it is ready; return how the analysis reaches the canary and the copy."""
        state = ClusterState(self.kube, namespace)
        record, canary_version = self._record_with_canary(name, namespace)
        canary = spec_of(canary_version)
        if record.primary is None:
            raise InvalidInputError("name", f"{name} has no primary to copy", "a first deploy is judged on its SLOs")
        if canary.router not in SIDE_BY_SIDE_ROUTERS or canary.runtime == "modelmesh":
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
        """The URL and headers a client uses: the mesh gateway with the `model` header, or the ISVC's URL
        through the ingress with its Host header (seed 002), or the version's own Service.

        With a `track` (primary or canary), the headers reach that version only: the mesh's track header,
        or on ModelMesh the version's own model name (the primary's name comes from the spec's primary)."""
        from components.deployment.options import parse_options
        from components.routing.istio import IstioOptions
        from components.routing.mesh import IngressOptions

        runtime = runtime_for(spec.runtime)
        if spec.runtime == "modelmesh":
            pinned = spec.for_version(spec.primary_version) if track == "primary" and spec.primary_version else spec
            model = {"model": pinned.object_name}
        else:
            model = {"model": spec.name} | ({TRACK_HEADER: track} if track else {})
        if spec.router in ("istio", "asm"):
            options = parse_options("router_options", IstioOptions, spec.router_options)
            port = options.rest_port if options.rest_port >= 0 else runtime.gateway_ports[0]
            return ClientEndpoint(f"http://{options.ingress}:{port}", model)
        obj = self.kube.get(*runtime.workload_ref(spec), spec.namespace) or {}
        url = (obj.get("status") or {}).get("url", "")
        if url and spec.runtime == "kserve":
            host = url.split("://", 1)[-1].split("/", 1)[0]
            ingress = parse_options("router_options", IngressOptions, spec.router_options).ingress
            return ClientEndpoint(f"http://{ingress}", {"Host": host})
        workload = runtime.workload(spec)
        return ClientEndpoint(url or f"http://{workload.service}.{spec.namespace}.svc.cluster.local:"
                                     f"{workload.rest_port}", model if spec.runtime == "modelmesh" else {})

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


def spec_of(version: Version) -> DeploymentSpec:
    """The deployment spec a cluster version was started from."""
    return spec_from_mapping(version.details["spec"])


def _beside(spec: DeploymentSpec, record: ModelRecord) -> DeploymentSpec:
    """The spec with the primary recorded on the cluster (a first deploy takes all traffic)."""
    primary = record.primary.version if record.primary else ""
    if spec.primary_version and spec.primary_version != primary:
        raise InvalidInputError("primary_version", f"{spec.name}'s primary on the cluster is {primary or 'none'}",
                                "drop --primary-version: the platform reads it from the cluster")
    if primary and not spec.side_by_side:
        raise InvalidInputError("router", f"runtime {spec.runtime} with router {spec.router} updates one object in "
                                "place, so a candidate cannot run beside the primary",
                                "route with istio or asm to roll versions out")
    if not primary and spec.router != "none":  # no router: a weight stays bad input, for the checks to refuse
        return replace(spec, primary_version="", canary_percent=0)
    return replace(spec, primary_version=primary if spec.router in ("istio", "asm") else "")


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


def _canary_weight(record: ModelRecord) -> int:
    return spec_of(record.canary).canary_percent if record.canary and record.primary else 0


def _named(version: str) -> str:
    """An endpoint's version name ('-' stands for none)."""
    return "" if version == "-" else version


def _state_name(name: str) -> str:
    return f"meshserve-rollout-{name}"


def _new_state(name: str, namespace: str) -> dict:
    labels = {"app.kubernetes.io/managed-by": "meshserve", "app.kubernetes.io/component": "rollout",
              "app.kubernetes.io/name": name}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": _state_name(name), "namespace": namespace, "labels": labels, "annotations": {}},
            "data": {"record": json.dumps(ModelRecord().to_dict())}}


def _record_of(config_map: dict | None) -> ModelRecord:
    """The record a state ConfigMap holds (empty when it has none: a deploy killed before it wrote one);
    one that is not a record is an error naming the ConfigMap."""
    if config_map is None:
        return ModelRecord()
    try:
        record = ModelRecord.from_dict(json.loads((config_map.get("data") or {}).get("record") or "{}"))
        before = (config_map["metadata"].get("annotations") or {}).get(ROUTES_BEFORE)
        record.routes_before = json.loads(before) if before else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        name = config_map.get("metadata", {}).get("name", "?")
        raise PlatformError("state", f"ConfigMap {name} does not hold a meshserve rollout record "
                            f"({type(exc).__name__})", f"inspect it (kubectl get configmap {name} -o yaml); delete "
                            "it to forget the rollout, then deploy again") from None
    return record


def _lease_of(config_map: dict | None) -> str | None:
    """The live lease holder (None when free or expired)."""
    if config_map is None:
        return None
    value = (config_map["metadata"].get("annotations") or {}).get(LEASE_HOLDER, "")
    holder, _, since = value.rpartition("@")
    if not holder or time.time() - float(since or 0) > LEASE_SECONDS:
        return None
    return holder


def _with_lease(config_map: dict, holder: str) -> dict:
    changed = json.loads(json.dumps(config_map))
    annotations = changed["metadata"].setdefault("annotations", {}) or {}
    if holder:
        annotations[LEASE_HOLDER] = f"{holder}@{time.time():.0f}"
    else:
        annotations.pop(LEASE_HOLDER, None)
    changed["metadata"]["annotations"] = annotations
    return changed


def _released(config_map: dict) -> dict | None:
    """The ConfigMap as it was, lease released (None: delete it, it held no model)."""
    return None if _record_of(config_map).empty else _with_lease(config_map, "")


def _stored(config_map: dict, record: ModelRecord) -> dict | None:
    """The ConfigMap holding `record` with the lease released (None: delete it, the model is gone)."""
    if record.empty:
        return None
    changed = _with_lease(config_map, "")
    routes_before, stored = record.routes_before, replace(record, routes_before=None)
    changed["data"] = {"record": json.dumps(stored.to_dict())}
    annotations = changed["metadata"]["annotations"]
    if routes_before is None:
        annotations.pop(ROUTES_BEFORE, None)
    else:
        annotations[ROUTES_BEFORE] = json.dumps(routes_before, sort_keys=True)
    return changed
