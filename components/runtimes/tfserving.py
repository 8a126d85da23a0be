"""TensorFlow Serving as a Deployment, a Service and its model config, as `arena serve tensorflow` makes (seed 003).

Objects are named NAME-VERSION-tensorflow-serving, like arena's, so versions stand side by side.
The model comes from a claim mounted at /models: a pvc:// claim, or an OSS bucket mounted through
the OSS CSI driver (a PersistentVolume whose keys come from a Secret, and its claim). The model
config file carries the version policy (latest, all, or specific versions). gRPC on 8500, REST on 8501.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.deployment.objects import Readiness, Workload, condition_is, conditions_text, metadata
from components.deployment.options import parse_options
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.runtimes.base import MESH_GATEWAY_PORTS, ServiceClients, Support
from components.runtimes.storage import POD_MODELS_ROOT, models_claim, oss_volume_objects, pod_model_path

GRPC_PORT, REST_PORT = 8500, 8501
CONFIG_DIR = "/etc/tfserving"
_POLICY = re.compile(r"^(latest(:[1-9][0-9]*)?|all|specific:[0-9]+(,[0-9]+)*)$")
_MOUNTED = "TF Serving reads models from a mounted volume"


@dataclass(frozen=True)
class TfServingOptions:
    """runtime_options for tfserving."""

    image: str = "tensorflow/serving:2.18.0"  # with GPUs, the -gpu variant of the same tag
    model_name: str = ""  # the name in TF Serving's URLs (default: the deployment's name)
    version_policy: str = "latest"  # latest[:N], all, or specific:V[,V]


class TfServingRuntime(ServiceClients):
    """Deployment + Service + ConfigMap (+ OSS PV and PVC) for one version."""

    kind = "tfserving"
    gateway_ports = MESH_GATEWAY_PORTS
    protocols = ("tfserving-rest", "tfserving-grpc")  # TF Serving's own REST and gRPC APIs
    support = Support(
        formats=("tensorflow",), schemes=("pvc", "oss"),
        scheme_refusals={"s3": f"{_MOUNTED}; copy the model to a PVC, or use oss:// (mounted by the OSS CSI driver)",
                         "gs": f"{_MOUNTED}; copy the model to a PVC",
                         "https": f"{_MOUNTED}; copy the model to a PVC"},
        router_refusals={"kserve-canary": "TF Serving Deployments have no Knative revisions; route with istio or asm"},
        autoscaling_refusals={"kpa": "Knative does not run this Deployment; use autoscaling hpa-cpu or hpa-qps"})

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse a version policy TF Serving does not know."""
        options = self._options(spec)
        if not _POLICY.fullmatch(options.version_policy):
            raise InvalidInputError("runtime_options.version_policy", f"{options.version_policy!r} is not a policy",
                                    "use latest, latest:N, all or specific:V[,V]")

    def workload(self, spec: DeploymentSpec) -> Workload:
        """Deployment and Service share arena's name; HPAs scale the Deployment."""
        name = self._name(spec)
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        return Workload(name, name, REST_PORT, GRPC_PORT, target if spec.autoscaling.kind != "none" else None)

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """OSS volume objects (for oss://), the model config, the Deployment and the Service."""
        volumes = oss_volume_objects(spec) if spec.scheme == "oss" else []
        return volumes + [self._config_map(spec), self._deployment(spec), self._service(spec)]

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """The Deployment."""
        return "apps/v1", "Deployment", self._name(spec)

    def readiness(self, obj: dict) -> Readiness:
        """Available with every replica updated, for the current generation; a stalled rollout fails."""
        return deployment_readiness(obj)

    def _name(self, spec: DeploymentSpec) -> str:
        return f"{spec.object_name}-tensorflow-serving"

    def _selector(self, spec: DeploymentSpec) -> dict:
        return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": self._name(spec)}

    def _config_map(self, spec: DeploymentSpec) -> dict:
        options = self._options(spec)
        model_name = options.model_name or spec.name
        config = (f'model_config_list {{\n  config {{\n    name: "{model_name}"\n'
                  f'    base_path: "{pod_model_path(spec)}"\n    model_platform: "tensorflow"\n'
                  f'    model_version_policy {{ {_policy_text(options.version_policy)} }}\n  }}\n}}\n')
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(spec, f"{self._name(spec)}-config"),
                "data": {"models.config": config}}

    def _deployment(self, spec: DeploymentSpec) -> dict:
        options = self._options(spec)
        image = f"{options.image}-gpu" if spec.resources.gpus and not options.image.endswith("-gpu") else options.image
        container: dict = {
            "name": "tensorflow-serving", "image": image,
            "args": [f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
                     f"--model_config_file={CONFIG_DIR}/models.config"],
            "ports": [{"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                      {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": f"/v1/models/{options.model_name or spec.name}",
                                           "port": REST_PORT}, "periodSeconds": 5},
            "volumeMounts": [{"name": "models", "mountPath": POD_MODELS_ROOT, "readOnly": True},
                             {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]}
        if spec.resources.requirements():
            container["resources"] = spec.resources.requirements()
        pod: dict = {"containers": [container], "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": models_claim(spec), "readOnly": True}},
            {"name": "config", "configMap": {"name": f"{self._name(spec)}-config"}}]}
        pod |= spec.placement.pod_fields()
        if spec.service_account:
            pod["serviceAccountName"] = spec.service_account
        template_meta: dict = {"labels": spec.labels() | self._selector(spec)}
        if spec.router in ("istio", "asm"):
            template_meta["annotations"] = {"sidecar.istio.io/inject": "true"}
        deployment_spec: dict = {"selector": {"matchLabels": self._selector(spec)},
                                 "template": {"metadata": template_meta, "spec": pod}}
        if spec.autoscaling.kind == "none":  # an HPA owns the count otherwise
            deployment_spec = {"replicas": spec.autoscaling.min_replicas} | deployment_spec
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": metadata(spec, self._name(spec)) | {"labels": spec.labels() | self._selector(spec)},
                "spec": deployment_spec}

    def _service(self, spec: DeploymentSpec) -> dict:
        # protocol is part of the ports' list key: server-side apply needs it stated
        ports = [{"name": "grpc-tf-serving", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP"},
                 {"name": "http-tf-serving", "port": REST_PORT, "targetPort": REST_PORT, "protocol": "TCP"}]
        return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(spec, self._name(spec)),
                "spec": {"type": "ClusterIP", "selector": self._selector(spec), "ports": ports}}

    def _options(self, spec: DeploymentSpec) -> TfServingOptions:
        return parse_options("runtime_options", TfServingOptions, spec.runtime_options)


def _policy_text(policy: str) -> str:
    """TF Serving's text-proto for a version policy."""
    kind, _, value = policy.partition(":")
    if kind == "all":
        return "all {}"
    if kind == "latest":
        return f"latest {{ num_versions: {value or 1} }}"
    return "specific { " + " ".join(f"versions: {v}" for v in value.split(",")) + " }"


def deployment_readiness(obj: dict) -> Readiness:
    """The Deployment controller's verdict: observed, updated, available; ProgressDeadlineExceeded fails."""
    status = obj.get("status") or {}
    summary = conditions_text(status.get("conditions", []))
    stalled = [c for c in status.get("conditions", []) or []
               if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"]
    if stalled:
        return Readiness(False, failed=stalled[0].get("message") or "ProgressDeadlineExceeded", conditions=summary)
    wanted = obj.get("spec", {}).get("replicas", 1)
    current = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 1)
    done = status.get("updatedReplicas", 0) >= wanted and status.get("availableReplicas", 0) >= wanted
    return Readiness(current and done and condition_is(obj, "Available"), conditions=summary)
