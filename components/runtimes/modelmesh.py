"""KServe ModelMesh: an InferenceService with `deploymentMode: ModelMesh` on shared runtime pods (seed 000).

ModelMesh loads many models into a few runtime pods and routes by model name, so each version is
its own model name (NAME-VERSION); clients and the mesh reach every model through the one
`modelmesh-serving` Service (REST 8008, gRPC 8033). Models on a PVC use `storage.parameters`
(type pvc); models in an object store use `storage.key`, an entry of ModelMesh's `storage-config`
Secret. Pods belong to the ServingRuntime, so resources and placement apply to the ServingRuntime
meshserve renders when asked (runtime option serving_runtime=true), and autoscaling per model is
not possible.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.deployment.objects import Readiness, Workload, metadata
from components.deployment.options import parse_options
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.routing.spec import ClientEndpoint
from components.runtimes.base import ServiceClients, Support, service_url, status_url
from components.runtimes.kserve import API_VERSION, DEPLOYMENT_MODE, inference_service_readiness

SERVICE, REST_PORT, GRPC_PORT = "modelmesh-serving", 8008, 8033
SERVING_RUNTIME_API_VERSION = "serving.kserve.io/v1alpha1"
_SHARED_PODS = ("ModelMesh scales the runtime pods all its models share, not one model; "
                "set the ServingRuntime's replicas")
_SERVERS = {  # model server, its image, and the formats it loads through ModelMesh's built-in adapter
    "triton": ("nvcr.io/nvidia/tritonserver:23.04-py3", ("tensorflow", "onnx", "pytorch")),
    "mlserver": ("seldonio/mlserver:1.3.2", ("sklearn", "xgboost", "lightgbm")),
}
# how each server listens on 8001 for ModelMesh's adapter (as modelmesh-serving ships them)
_SERVER_CONTAINERS: dict[str, dict] = {
    "triton": {"command": ["/bin/sh"], "args": [
        "-c", "mkdir -p /models/_triton_models; chmod 777 /models/_triton_models; exec tritonserver "
              "--model-repository=/models/_triton_models --model-control-mode=explicit --strict-model-config=false "
              "--strict-readiness=false --allow-http=true --allow-sagemaker=false"]},
    "mlserver": {"env": [{"name": "MLSERVER_MODELS_DIR", "value": "/models/_mlserver_models/"},
                         {"name": "MLSERVER_GRPC_PORT", "value": "8001"},
                         {"name": "MLSERVER_HTTP_PORT", "value": "8002"},
                         {"name": "MLSERVER_LOAD_MODELS_AT_STARTUP", "value": "false"},
                         {"name": "MLSERVER_MODEL_NAME", "value": "dummy-model"}]},
}


@dataclass(frozen=True)
class ModelMeshOptions:
    """runtime_options for modelmesh."""

    storage_key: str = ""  # the storage-config entry for s3:// and oss:// models
    serving_runtime: bool = False  # also render the ServingRuntime this format needs
    runtime: str = ""  # name of an existing ServingRuntime to pin the model to


class ModelMeshRuntime(ServiceClients):
    """The InferenceService (and, when asked, the ServingRuntime) for one model version."""

    kind = "modelmesh"
    gateway_ports = (REST_PORT, GRPC_PORT)  # the gateway routes to modelmesh-serving's own ports
    shared_routing = True  # every model behind modelmesh-serving, which routes by the model's name
    protocols = ("v2-grpc", "v2-rest")  # ModelMesh speaks the v2 protocol only (REST through its proxy)
    support = Support(
        formats=("sklearn", "tensorflow", "onnx", "pytorch", "xgboost", "lightgbm", "openvino"),
        schemes=("pvc", "s3", "oss"),
        scheme_refusals={"gs": "ModelMesh reads PVCs and S3-compatible stores only",
                         "https": "ModelMesh reads PVCs and S3-compatible stores only"},
        router_refusals={"kserve-canary": "ModelMesh models have no Knative revisions to split; "
                                          "deploy the version under its own name and route with istio or asm"},
        autoscaling_refusals={kind: f"{_SHARED_PODS}; use autoscaling none"
                              for kind in ("hpa-cpu", "hpa-qps", "kpa")})

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse weighted canaries, keyless object stores and pod settings without a ServingRuntime."""
        options = self._options(spec)
        if spec.canary_percent:
            raise InvalidInputError("canary_percent", "ModelMesh routes by model name, so a weighted split "
                                    "between versions is not possible", "pass 0: reach the candidate by its name")
        if spec.scheme in ("s3", "oss") and not options.storage_key:
            raise InvalidInputError("runtime_options.storage_key", "an object-store model needs its storage-config "
                                    "entry", "pass --runtime-option storage_key=NAME")
        if options.serving_runtime and options.runtime:
            raise InvalidInputError("runtime_options.runtime", "names a runtime and asks for a new one",
                                    "pass serving_runtime=true or runtime=NAME, not both")
        if options.serving_runtime and spec.model_format not in self._formats_with_servers():
            raise InvalidInputError("runtime_options.serving_runtime", f"meshserve has no ServingRuntime for "
                                    f"{spec.model_format}", "use ModelMesh's built-in runtime (drop serving_runtime)")
        pod_settings = spec.resources.requirements() or spec.placement.pod_fields()
        if pod_settings and not options.serving_runtime:
            raise InvalidInputError("resources", "ModelMesh models run in the ServingRuntime's pods",
                                    "pass --runtime-option serving_runtime=true to size and place them")
        if spec.autoscaling.min_replicas != 1 and not options.serving_runtime:
            raise InvalidInputError("min_replicas", _SHARED_PODS, "pass --runtime-option serving_runtime=true")

    def workload(self, spec: DeploymentSpec) -> Workload:
        """Every model is reached through the modelmesh-serving Service."""
        return Workload(spec.object_name, SERVICE, REST_PORT, GRPC_PORT)

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """The ServingRuntime (when asked) and the InferenceService."""
        options = self._options(spec)
        objects = [self._serving_runtime(spec)] if options.serving_runtime else []
        return objects + [self._inference_service(spec, options)]

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """The InferenceService."""
        return API_VERSION, "InferenceService", spec.object_name

    def readiness(self, obj: dict) -> Readiness:
        """Ready=True for the current generation, and ModelMesh's model state Loaded."""
        return inference_service_readiness(obj, loaded_required=True)

    def model_headers(self, spec: DeploymentSpec, track: str) -> dict[str, str]:
        """The version's own model name: each version is a model of its own (the primary's, for that track)."""
        return {"model": self.served_model(spec, track)}

    def served_model(self, spec: DeploymentSpec, track: str) -> str:
        """NAME-VERSION: each version is a model of its own (the spec's primary's, for that track)."""
        pinned = spec.for_version(spec.primary_version) if track == "primary" and spec.primary_version else spec
        return pinned.object_name

    def client(self, spec: DeploymentSpec, live_object: dict, ingress: str) -> ClientEndpoint:
        """The URL the InferenceService's status reports (else modelmesh-serving's Service), with the version's
        model name."""
        return ClientEndpoint(status_url(live_object) or service_url(spec, self.workload(spec)),
                              self.model_headers(spec, ""))

    def _inference_service(self, spec: DeploymentSpec, options: ModelMeshOptions) -> dict:
        model: dict = {"modelFormat": {"name": spec.model_format}}
        runtime = f"meshserve-{_server_for(spec.model_format)}" if options.serving_runtime else options.runtime
        if runtime:
            model["runtime"] = runtime
        if spec.scheme == "pvc":
            model["storage"] = {"parameters": {"type": "pvc", "name": spec.bucket_or_claim}, "path": spec.path}
        else:
            model["storage"] = {"key": options.storage_key, "path": spec.path,
                                "parameters": {"bucket": spec.bucket_or_claim}}
        return {"apiVersion": API_VERSION, "kind": "InferenceService",
                "metadata": metadata(spec, spec.object_name, {DEPLOYMENT_MODE: "ModelMesh"}),
                "spec": {"predictor": {"model": model}}}

    def _serving_runtime(self, spec: DeploymentSpec) -> dict:
        server = _server_for(spec.model_format)
        image, formats = _SERVERS[server]
        container: dict = {"name": server, "image": image} | _SERVER_CONTAINERS[server]
        if spec.resources.requirements():
            container["resources"] = spec.resources.requirements()
        runtime_spec: dict = {
            "supportedModelFormats": [{"name": name, "autoSelect": True} for name in formats],
            "multiModel": True, "grpcDataEndpoint": "port:8001", "grpcEndpoint": "port:8085",
            "replicas": spec.autoscaling.min_replicas, "containers": [container],
            "builtInAdapter": {"serverType": server, "runtimeManagementPort": 8001, "memBufferBytes": 134217728,
                               "modelLoadingTimeoutMillis": 90000}}
        runtime_spec |= spec.placement.pod_fields()
        shared = {"name": f"meshserve-{server}", "namespace": spec.namespace,  # shared by the namespace's models
                  "labels": {"app.kubernetes.io/managed-by": "meshserve"}}
        return {"apiVersion": SERVING_RUNTIME_API_VERSION, "kind": "ServingRuntime", "metadata": shared,
                "spec": runtime_spec}

    def _options(self, spec: DeploymentSpec) -> ModelMeshOptions:
        return parse_options("runtime_options", ModelMeshOptions, spec.runtime_options)

    @staticmethod
    def _formats_with_servers() -> tuple[str, ...]:
        return tuple(name for _, formats in _SERVERS.values() for name in formats)


def _server_for(model_format: str) -> str:
    return next(server for server, (_, formats) in _SERVERS.items() if model_format in formats)
