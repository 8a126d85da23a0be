"""OpenVINO Model Server through its operator: a `ModelServer` (intel.com/v1alpha1), as in seed 001.

The operator creates a Deployment and a Service named after the ModelServer (gRPC 8080, REST 8081
by default). With a mesh router the pods get Istio's sidecar, so L7 balancing spreads gRPC requests
that one sticky connection would pin to one pod (seed 001's point). An HPA scales the
ModelServer through its scale subresource (the operator carries the count to its Deployment). The
operator takes S3 keys only inline, which meshserve never writes, so models come from a PVC or a
(public or Secret-backed) GCS bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.deployment.objects import Readiness, Workload, condition_is, conditions_text, metadata
from components.deployment.options import parse_options
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.runtimes.base import MESH_GATEWAY_PORTS, ServiceClients, Support
from components.runtimes.storage import models_claim, pod_model_path

API_VERSION = "intel.com/v1alpha1"
_INLINE_KEYS = "the OpenVINO operator takes S3 keys only inline in the ModelServer, and meshserve keeps keys in Secrets"


@dataclass(frozen=True)
class OvmsOptions:
    """runtime_options for ovms."""

    image: str = "openvino/model_server:2024.4"
    model_name: str = ""  # the name in the server's URLs and gRPC requests (default: the deployment's name)
    grpc_port: int = 8080
    rest_port: int = 8081
    throughput_streams: str = "1"  # CPU_THROUGHPUT_STREAMS: about one per expected parallel client connection
    target_device: str = "CPU"
    log_level: str = "INFO"


class OpenVinoRuntime(ServiceClients):
    """The ModelServer for one version."""

    kind = "ovms"
    gateway_ports = MESH_GATEWAY_PORTS
    protocols = ("v2-grpc", "v2-rest", "tfserving-grpc", "tfserving-rest")  # seed 001 loads it over gRPC
    support = Support(
        formats=("openvino", "onnx", "tensorflow"), schemes=("pvc", "gs"),
        scheme_refusals={"s3": f"{_INLINE_KEYS}", "oss": f"{_INLINE_KEYS}",
                         "https": "OpenVINO Model Server does not download models over https"},
        router_refusals={"kserve-canary": "a ModelServer has no Knative revisions; route with istio or asm"},
        autoscaling_refusals={"kpa": "Knative does not run ModelServer pods; use autoscaling hpa-cpu or hpa-qps"})

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse GPUs and tolerations, which the operator's ModelServer cannot express."""
        options = self._options(spec)
        if spec.resources.gpus:
            raise InvalidInputError("resources.gpus", "the OpenVINO operator schedules Intel devices, "
                                    "not nvidia.com/gpu", "pass --gpus 0, or serve with tfserving or kserve")
        if spec.placement.tolerations:
            raise InvalidInputError("toleration", "the ModelServer resource has no tolerations",
                                    "use --node-selector, or another runtime")
        for name in ("grpc_port", "rest_port"):
            if not 0 < getattr(options, name) <= 65535:
                raise InvalidInputError(f"runtime_options.{name}", f"{getattr(options, name)} is not a port",
                                        "pass 1 to 65535")

    def workload(self, spec: DeploymentSpec) -> Workload:
        """The operator's Service is named after the ModelServer; an HPA scales the ModelServer (its scale
        subresource sets deployment_parameters.replicas, which the operator carries to its Deployment)."""
        options = self._options(spec)
        scale_target = {"apiVersion": API_VERSION, "kind": "ModelServer", "name": spec.object_name}
        return Workload(spec.object_name, spec.object_name, options.rest_port, options.grpc_port,
                        scale_target if spec.autoscaling.kind != "none" else None)

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """The ModelServer."""
        return API_VERSION, "ModelServer", spec.object_name

    def readiness(self, obj: dict) -> Readiness:
        """The operator's (Helm-based) conditions: Deployed=True; ReleaseFailed=True fails."""
        conditions = (obj.get("status") or {}).get("conditions", [])
        summary = conditions_text(conditions)
        failed = [c for c in conditions or [] if c.get("type") == "ReleaseFailed" and c.get("status") == "True"]
        if failed:
            return Readiness(False, failed=failed[0].get("message") or "ReleaseFailed", conditions=summary)
        return Readiness(condition_is(obj, "Deployed"), conditions=summary)

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """The ModelServer."""
        options = self._options(spec)
        deployment: dict = {"replicas": spec.autoscaling.min_replicas} if spec.autoscaling.kind == "none" else {}
        if spec.router in ("istio", "asm"):
            deployment["openshift_service_mesh"] = True  # the operator's switch for sidecar.istio.io/inject
        if spec.resources.requirements():
            deployment["resources"] = spec.resources.requirements()
        if spec.placement.node_selector:
            deployment["node_affinity"] = _required_node_affinity(spec.placement.node_selector)
        plugin_config = json.dumps({"CPU_THROUGHPUT_STREAMS": options.throughput_streams}, separators=(",", ":"))
        model_settings = {"single_model_mode": True, "model_name": options.model_name or spec.name,
                          "model_path": self._model_path(spec), "plugin_config": plugin_config,
                          "target_device": options.target_device}
        return [{"apiVersion": API_VERSION, "kind": "ModelServer", "metadata": metadata(spec, spec.object_name),
                 "spec": {"image_name": options.image, "deployment_parameters": deployment,
                          "service_parameters": {"grpc_port": options.grpc_port, "rest_port": options.rest_port,
                                                 "service_type": "ClusterIP"},
                          "models_settings": model_settings, "models_repository": self._repository(spec),
                          "server_settings": {"log_level": options.log_level}}}]

    def _model_path(self, spec: DeploymentSpec) -> str:
        return pod_model_path(spec) if spec.scheme == "pvc" else spec.storage_uri

    def _repository(self, spec: DeploymentSpec) -> dict:
        if spec.scheme == "pvc":
            return {"storage_type": "cluster", "models_volume_claim": models_claim(spec)}
        repository = {"storage_type": "google"}
        if spec.storage.secret:
            repository["gcp_creds_secret_name"] = spec.storage.secret
        return repository

    def _options(self, spec: DeploymentSpec) -> OvmsOptions:
        return parse_options("runtime_options", OvmsOptions, spec.runtime_options)


def _required_node_affinity(labels: dict[str, str]) -> dict:
    expressions = [{"key": key, "operator": "In", "values": [value]} for key, value in sorted(labels.items())]
    terms = [{"matchExpressions": expressions}]
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
