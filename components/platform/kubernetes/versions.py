"""The rollout's runtime on a cluster: a version's objects (InferenceService, ModelServer or Deployment + Service,
its HPA) are server-side applied, then watched until the runtime's controller reports them ready, with a deadline;
if they never are, they are deleted and the error carries the last conditions."""

from __future__ import annotations

from dataclasses import dataclass

from components.deployment.spec import DeploymentSpec, spec_from_mapping
from components.kube.client import Kube
from components.platform.kubernetes.names import VERSION_LABEL
from components.platform.kubernetes.render import version_objects
from components.rollout.contract import Candidate, Version
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
        return Version(spec.name, spec.version, candidate.model_digest, spec.storage_uri, runtime.endpoint(spec),
                       ClusterDetails(spec))

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
        for obj in reversed(version_objects(spec)):
            if obj["metadata"].get("labels", {}).get(VERSION_LABEL) == spec.version:
                meta = obj["metadata"]
                self.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))


def spec_of(version: Version) -> DeploymentSpec:
    """The deployment spec a cluster version was started from."""
    if not isinstance(version.details, ClusterDetails):
        raise TypeError(f"a cluster version keeps ClusterDetails, not {type(version.details).__name__}")
    return version.details.spec
