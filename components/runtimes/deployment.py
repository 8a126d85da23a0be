"""meshserve's own model-server image as a plain Deployment and Service per version, for clusters without KServe.

Objects are named NAME-VERSION, so versions stand side by side. The pod runs the model-server image of the
model's framework (`python -m components.serving /mnt/models --name NAME --host 0.0.0.0`), as uid 1000 with
no privilege escalation, with KServe's v2 health endpoints as probes: liveness on `/v2/health/live`,
readiness on `/v2/models/NAME/ready` (a model that fails to load never becomes ready; the server exits, and
its last log lines become the container's termination message). The model comes from a claim mounted
read-only at /mnt/models (`subPath`: the version's directory). REST on 8080, gRPC on 8081, as KServe's.

Behind istio or asm each version's Service is a destination of the mesh's split. With router `none` the
model's traffic moves blue/green, as Flagger's Kubernetes provider does: the model's stable Service NAME
selects the primary's pods, and promote points it at the canary's; a weighted share is refused (nothing
splits), so a candidate is measured at its own Service (`NAME-VERSION`) and then switched to all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import __version__
from components.deployment.objects import Readiness, Workload, metadata
from components.deployment.options import parse_options
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.runtimes.base import MESH_GATEWAY_PORTS, ServiceClients, Support
from components.runtimes.storage import models_claim
from components.runtimes.tfserving import deployment_readiness

REST_PORT, GRPC_PORT = 8080, 8081
MODEL_MOUNT = "/mnt/models"
VERSION_SELECTOR = "meshserve.io/version"
MODEL_SERVER_IMAGE = "ghcr.io/meshserve/model-server-{framework}:" + __version__  # runtime_images/build.sh tags
_MOUNTED = "meshserve's model server reads the model from a mounted claim"


@dataclass(frozen=True)
class DeploymentOptions:
    """runtime_options for deployment."""

    image: str = ""  # default: meshserve's model-server image for the model's framework, at this version
    image_pull_policy: str = "IfNotPresent"  # Never: an image imported into the node (no registry)


class DeploymentRuntime(ServiceClients):
    """Deployment + Service for one version (and, with no router, the model's stable Service)."""

    kind = "deployment"
    gateway_ports = MESH_GATEWAY_PORTS
    protocols = ("v2-rest", "v2-grpc", "kserve-v1")  # the model server speaks KServe's protocols
    support = Support(
        formats=("sklearn", "tensorflow"), schemes=("pvc",),
        scheme_refusals={scheme: f"{_MOUNTED}; copy the model to a PVC (meshserve upload --to pvc://...), or use "
                                 "runtime kserve, whose storage initializer fetches object stores"
                         for scheme in ("s3", "oss", "gs", "https")},
        router_refusals={"kserve-canary": "a Deployment has no Knative revisions; route with istio or asm, or none "
                                          "(blue/green by the stable Service)"},
        autoscaling_refusals={"kpa": "Knative does not run this Deployment; use autoscaling hpa-cpu or hpa-qps"})

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse an image pull policy Kubernetes does not know."""
        policy = self._options(spec).image_pull_policy
        if policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidInputError("runtime_options.image_pull_policy", f"{policy!r} is not a pull policy",
                                    "use Always, IfNotPresent or Never")

    def workload(self, spec: DeploymentSpec) -> Workload:
        """Deployment and Service share the version's name; an HPA scales the Deployment."""
        name = spec.object_name
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        return Workload(name, name, REST_PORT, GRPC_PORT, target if spec.autoscaling.kind != "none" else None)

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """The Deployment and the Service."""
        return [self._deployment(spec), self._service(spec)]

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """The Deployment."""
        return "apps/v1", "Deployment", spec.object_name

    def readiness(self, obj: dict) -> Readiness:
        """Available with every replica updated, for the current generation; a stalled rollout fails."""
        return deployment_readiness(obj)

    def pod_selector(self, spec: DeploymentSpec) -> dict[str, str]:
        """The labels of the version's pods."""
        return {"app.kubernetes.io/name": spec.name, VERSION_SELECTOR: spec.version}

    def stable_service(self, spec: DeploymentSpec, version: str) -> dict:
        """The model's stable Service NAME, selecting `version`'s pods (blue/green with no router)."""
        meta = metadata(spec, spec.name, versioned=False)
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"type": "ClusterIP", "selector": self.pod_selector(spec) | {VERSION_SELECTOR: version},
                         "ports": _ports()}}

    def _deployment(self, spec: DeploymentSpec) -> dict:
        options = self._options(spec)
        container: dict = {
            "name": "kserve-container",
            "image": options.image or MODEL_SERVER_IMAGE.format(framework=spec.model_format),
            "imagePullPolicy": options.image_pull_policy,
            "args": [MODEL_MOUNT, "--name", spec.name, "--host", "0.0.0.0", "--http-port", str(REST_PORT),
                     "--grpc-port", str(GRPC_PORT)],
            "ports": [{"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
                      {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": f"/v2/models/{spec.name}/ready", "port": REST_PORT},
                               "periodSeconds": 2, "failureThreshold": 3},
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": REST_PORT},
                              "initialDelaySeconds": 30, "periodSeconds": 10, "failureThreshold": 3},
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False},
            "volumeMounts": [{"name": "models", "mountPath": MODEL_MOUNT, "subPath": spec.path, "readOnly": True}]}
        if spec.resources.requirements():
            container["resources"] = spec.resources.requirements()
        pod: dict = {"containers": [container], "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": models_claim(spec), "readOnly": True}}]}
        pod |= spec.placement.pod_fields()
        if spec.service_account:
            pod["serviceAccountName"] = spec.service_account
        template_meta: dict = {"labels": spec.labels() | self.pod_selector(spec)}
        if spec.router in ("istio", "asm"):
            template_meta["annotations"] = {"sidecar.istio.io/inject": "true"}
        deployment_spec: dict = {"selector": {"matchLabels": self.pod_selector(spec)},
                                 "progressDeadlineSeconds": 600,
                                 "template": {"metadata": template_meta, "spec": pod}}
        if spec.autoscaling.kind == "none":  # an HPA owns the count otherwise
            deployment_spec = {"replicas": spec.autoscaling.min_replicas} | deployment_spec
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(spec, spec.object_name),
                "spec": deployment_spec}

    def _service(self, spec: DeploymentSpec) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(spec, spec.object_name),
                "spec": {"type": "ClusterIP", "selector": self.pod_selector(spec), "ports": _ports()}}

    def _options(self, spec: DeploymentSpec) -> DeploymentOptions:
        return parse_options("runtime_options", DeploymentOptions, spec.runtime_options)


def _ports() -> list[dict]:
    # protocol is part of the ports' list key: server-side apply needs it stated
    return [{"name": "http", "port": REST_PORT, "targetPort": REST_PORT, "protocol": "TCP"},
            {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP"}]
