"""The rollout's runtime on a cluster: a version's objects (InferenceService, ModelServer or Deployment + Service,
its HPA) are server-side applied, then watched until the runtime's controller reports them ready, with a deadline;
if they never are, they are deleted and the error carries the last conditions."""

from __future__ import annotations

from dataclasses import dataclass

from components.deployment.spec import DeploymentSpec, spec_from_mapping
from components.errors import PlatformError
from components.kube.client import Kube
from components.platform.kubernetes.names import VERSION_LABEL, model_selector
from components.platform.kubernetes.render import serving_objects, version_objects
from components.rollout.contract import Candidate, Version
from components.routing.registry import mesh_routes_for
from components.runtimes.base import runtime_for

READY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ClusterDetails:
    """What the Kubernetes platform keeps with a version: the deployment spec it was started from."""

    spec: DeploymentSpec

    def to_dict(self) -> dict:
        """The JSON form in the rollout record's ConfigMap."""
        return {"spec": self.spec.to_mapping()}

    @classmethod
    def from_dict(cls, data: dict) -> ClusterDetails:
        """The details a rollout record keeps."""
        return cls(spec_from_mapping(data["spec"]))


class ClusterVersions:
    """Each version's objects, applied and watched until ready."""

    def __init__(self, kube: Kube, ready_timeout_s: float = READY_TIMEOUT_S):
        self.kube = kube
        self.ready_timeout_s = ready_timeout_s

    def start(self, candidate: Candidate) -> Version:
        """Apply the version's objects and wait until its controller says ready; else put back what was there
        (an object the version shares, such as the one InferenceService a KServe canary goes into, as it was;
        the others deleted) and raise."""
        spec = candidate.spec
        if not isinstance(spec, DeploymentSpec):
            raise TypeError(f"a cluster candidate carries a DeploymentSpec, not {type(spec).__name__}")
        runtime = runtime_for(spec.runtime)
        objects = serving_objects(spec)
        before = self._shared_with_the_primary(spec, objects)
        try:
            for obj in objects:
                self.kube.apply(obj)
            api_version, kind, name = runtime.workload_ref(spec)
            try:
                self.kube.wait(api_version, kind, name, spec.namespace, runtime.readiness, self.ready_timeout_s)
            except PlatformError as error:
                raise self._with_pod_troubles(error, spec) from None
        except BaseException:
            self._put_back(objects, before)
            raise
        return Version(spec.name, spec.version, candidate.model_digest, spec.storage_uri, runtime.endpoint(spec),
                       ClusterDetails(spec))

    def _with_pod_troubles(self, error: PlatformError, spec: DeploymentSpec) -> PlatformError:
        """The readiness error, with what the kubelet reports of the version's pods that are not ready (a pod
        reading failure leaves the error as it was)."""
        try:
            pods = self.kube.list("v1", "Pod", spec.namespace, f"{model_selector(spec.name).split(',', 1)[1]},"
                                                               f"{VERSION_LABEL}={spec.version}")
        except PlatformError:
            return error
        troubles = pod_troubles(pods)
        if not troubles:
            return error
        deadline = error.problem.split("; last conditions")[0]  # the pods say more than the Deployment's conditions
        command = (f"describe pods -l {VERSION_LABEL}={spec.version}" if UNSCHEDULED in troubles
                   else f"logs -l {VERSION_LABEL}={spec.version} --previous")
        return PlatformError(error.field, f"{deadline}; {troubles}",
                             f"fix the cause the pods name (`kubectl -n {spec.namespace} {command}`)")

    def details_from(self, data: dict) -> ClusterDetails:
        """The spec kept with a version in its rollout record."""
        return ClusterDetails.from_dict(data)

    def healthy(self, version: Version) -> bool:
        """The version's workload object reports ready now."""
        spec = spec_of(version)
        obj = self.workload_object(spec)
        return bool(obj) and runtime_for(spec.runtime).readiness(obj).ready

    def workload_object(self, spec: DeploymentSpec) -> dict:
        """The version's workload object as the API server holds it ({} when it is gone)."""
        return self.kube.get(*runtime_for(spec.runtime).workload_ref(spec), spec.namespace) or {}

    def stop(self, version: Version) -> None:
        """Delete the version's own objects (shared ones, such as a storage claim, stay)."""
        self._delete(spec_of(version))

    def _delete(self, spec: DeploymentSpec) -> None:
        """Delete the version's objects that are still this version's (an object it shared with a later version,
        as a KServe canary shares its InferenceService, now serves that one and stays)."""
        in_place = mesh_routes_for(spec.router).in_place
        for obj in reversed(version_objects(spec)):
            meta = obj["metadata"]
            if not _versioned(obj, spec.version):
                continue
            if in_place:  # the object may serve a later version by now: delete it only if it is still this one's
                live = self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))
                if live is None or not _versioned(live, spec.version):
                    continue
            self.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))

    def _shared_with_the_primary(self, spec: DeploymentSpec, objects: list[dict]) -> list[dict | None]:
        """Each of the version's own objects as it is before the start, where the version goes into the primary's
        objects (a KServe canary into its InferenceService); None for objects the start creates."""
        if not mesh_routes_for(spec.router).in_place:
            return [None] * len(objects)
        return [self.kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                              obj["metadata"].get("namespace", "")) if _versioned(obj, spec.version) else None
                for obj in objects]

    def _put_back(self, objects: list[dict], before: list[dict | None]) -> None:
        """After a failed start: the version's own objects that existed before as they were (spec, labels and
        annotations), the ones it created deleted; shared objects (a storage claim) stay."""
        for obj, was in reversed(list(zip(objects, before, strict=True))):
            meta = obj["metadata"]
            if was is not None:
                self.kube.apply(applied_form(was))
            elif meta.get("labels", {}).get(VERSION_LABEL):
                self.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))


UNSCHEDULED = "not scheduled"  # how pod_troubles names a pod the scheduler has not placed


def pod_troubles(pods: list[dict]) -> str:
    """What keeps pods from ready, as the scheduler and the kubelet report it: a pod not scheduled, the reason
    (Unschedulable: an unbound claim, no room); per container not ready, its waiting reason
    (CrashLoopBackOff, ImagePullBackOff, ...) or state, its restarts, and its last exit code and message (its
    termination message: the log's last lines, with FallbackToLogsOnError)."""
    troubles = []
    for pod in pods:
        status = pod.get("status") or {}
        unscheduled = [condition for condition in status.get("conditions") or []
                       if condition.get("type") == "PodScheduled" and condition.get("status") == "False"]
        for condition in unscheduled:  # no container yet: the scheduler says why (an unbound claim, no room)
            message = " ".join(str(condition.get("message") or "").split()).rstrip(".")
            troubles.append(f"pod {pod['metadata']['name']}: {UNSCHEDULED} ({condition.get('reason') or 'pending'}): "
                            f"{message[-240:]}")
        for container in status.get("containerStatuses") or []:
            if container.get("ready"):
                continue
            state = container.get("state") or {}
            reason = ((state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
                      or ("running, not ready" if state.get("running") else "unknown"))
            text = f"pod {pod['metadata']['name']}: {reason}, restarted {container.get('restartCount', 0)} times"
            last = (container.get("lastState") or {}).get("terminated") or {}
            if last:
                message = " ".join(str(last.get("message") or last.get("reason") or "").split())
                text += f", last exit {last.get('exitCode')}: {message[-240:]}"
            troubles.append(text)
    return "; ".join(troubles[:2])


def _versioned(obj: dict, version: str) -> bool:
    """Whether the object is one of `version`'s own (labelled with it), not shared by the model's versions."""
    return (obj["metadata"].get("labels") or {}).get(VERSION_LABEL) == version


# Spec fields the API server allocates. Applied back, they would become meshserve's, and a later apply without
# them would unset them: for a Service, "primary clusterIP can not be unset".
ALLOCATED = {"Service": ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort")}


def applied_form(obj: dict) -> dict:
    """A live object as meshserve would apply it again: its identity, labels, annotations and spec (without what
    the API server allocated)."""
    kept = ("name", "namespace", "labels", "annotations")
    spec = {key: value for key, value in obj["spec"].items() if key not in ALLOCATED.get(obj["kind"], ())}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {key: obj["metadata"][key] for key in kept if obj["metadata"].get(key)}, "spec": spec}


def spec_of(version: Version) -> DeploymentSpec:
    """The deployment spec a cluster version was started from."""
    if not isinstance(version.details, ClusterDetails):
        raise TypeError(f"a cluster version keeps ClusterDetails, not {type(version.details).__name__}")
    return version.details.spec
