"""KServe InferenceService (serving.kserve.io/v1beta1), Serverless (Knative) or RawDeployment.

The predictor is KServe's `model` form (modelFormat + storageUri + runtime picked by format); the
older framework form (`predictor.sklearn.storageUri`, seed 002) is a runtime option. Scaling uses
KServe's own fields (minReplicas, maxReplicas, scaleMetric, scaleTarget): on Serverless, Knative
scales by KPA or by its HPA class; on RawDeployment, KServe creates the HPA for CPU, and an external
metric (QPS) is scaled by meshserve's own HPA with KServe's autoscaler class set to external.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.autoscaling.kpa import KNATIVE_CLASS_ANNOTATION, knative_class
from components.deployment.objects import (
    Readiness,
    Workload,
    condition_is,
    conditions_text,
    metadata,
    scale_target_annotations,
)
from components.deployment.options import parse_options
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.routing.spec import ClientEndpoint
from components.runtimes.base import MESH_GATEWAY_PORTS, ServiceClients, Support, status_url
from components.runtimes.storage import (
    check_object_store_access,
    kserve_storage_uri,
    storage_service_account,
    storage_service_account_name,
)

API_VERSION = "serving.kserve.io/v1beta1"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
FORMATS = ("sklearn", "tensorflow", "onnx", "triton", "xgboost", "lightgbm", "pytorch")
_SERVERLESS = Support(
    formats=FORMATS, schemes=("pvc", "s3", "oss", "gs", "https"),
    router_refusals={
        "istio": "Knative routes Serverless predictors (a mesh split between them would bypass it); "
                 "use router kserve-canary, or runtime kserve-raw with istio",
        "asm": "Knative routes Serverless predictors (a mesh split between them would bypass it); "
               "use router kserve-canary, or runtime kserve-raw with asm"},
    autoscaling_refusals={
        "hpa-qps": "Knative's HPA class scales on CPU or memory only; use autoscaling kpa with metric rps, "
                   "or runtime kserve-raw"})
_RAW = Support(
    formats=FORMATS, schemes=("pvc", "s3", "oss", "gs", "https"),
    router_refusals={"kserve-canary": "KServe's canary rollout needs Knative revisions; "
                                      "use runtime kserve, or router istio/asm to split between versions"},
    autoscaling_refusals={"kpa": "Knative's autoscaler does not run RawDeployment predictors; "
                                 "use autoscaling hpa-cpu or hpa-qps, or runtime kserve"})


@dataclass(frozen=True)
class KServeOptions:
    """runtime_options for kserve and kserve-raw."""

    predictor: str = "model"  # or "framework": predictor.<format>.storageUri, KServe's older form
    runtime: str = ""  # a ServingRuntime name; empty: KServe picks one by format
    protocol_version: str = ""  # v1 or v2
    timeout: int = 0  # seconds per request at the predictor (0: KServe's default)


class _KServe(ServiceClients):
    """The InferenceService for one version; the deployment mode is the subclass's."""

    kind = ""
    gateway_ports = MESH_GATEWAY_PORTS
    protocols = ("kserve-v1", "v2-rest", "v2-grpc")  # the sklearn/TF predictors' v1, and the v2 protocol
    mode = ""
    support: Support

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse unknown options and an OSS location without its endpoint."""
        options = self._options(spec)
        if options.predictor not in ("model", "framework"):
            raise InvalidInputError("runtime_options.predictor", f"unknown predictor form {options.predictor!r}",
                                    "use model or framework")
        if options.protocol_version not in ("", "v1", "v2"):
            raise InvalidInputError("runtime_options.protocol_version", f"unknown {options.protocol_version!r}",
                                    "use v1 or v2")
        if options.predictor == "framework" and (options.runtime or spec.model_format == "triton"):
            raise InvalidInputError("runtime_options.predictor", "the framework form names no runtime",
                                    "use predictor=model to pick a runtime")
        check_object_store_access(spec)

    def workload(self, spec: DeploymentSpec) -> Workload:
        """KServe names the predictor's Service NAME-predictor (REST on 80, gRPC on 8081)."""
        return Workload(spec.object_name, f"{spec.object_name}-predictor", 80, 8081, self._hpa_target(spec))

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """The ServiceAccount for object-store keys (when needed) and the InferenceService."""
        account = storage_service_account(spec)
        return ([account] if account else []) + [self._inference_service(spec, account is not None)]

    def _inference_service(self, spec: DeploymentSpec, has_account: bool) -> dict:
        options = self._options(spec)
        predictor: dict = {}
        if has_account or spec.service_account:
            predictor["serviceAccountName"] = storage_service_account_name(spec)
        predictor |= self._scaling_fields(spec)
        predictor |= spec.placement.pod_fields()
        if options.timeout:
            predictor["timeout"] = options.timeout
        container: dict = {"storageUri": kserve_storage_uri(spec)}
        if options.protocol_version:
            container["protocolVersion"] = options.protocol_version
        if spec.resources.requirements():
            container["resources"] = spec.resources.requirements()
        if options.predictor == "framework":
            predictor[spec.model_format] = container
        else:
            model: dict[str, object] = {"modelFormat": {"name": spec.model_format}}
            if options.runtime:
                model["runtime"] = options.runtime
            predictor["model"] = model | container
        return {"apiVersion": API_VERSION, "kind": "InferenceService",
                "metadata": metadata(spec, spec.object_name, self._annotations(spec) | scale_target_annotations(spec)),
                "spec": {"predictor": predictor}}

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """The InferenceService."""
        return API_VERSION, "InferenceService", spec.object_name

    def readiness(self, obj: dict) -> Readiness:
        """Ready=True for the current generation; a model that failed to load, or an invalid spec, fails."""
        return inference_service_readiness(obj)

    def _options(self, spec: DeploymentSpec) -> KServeOptions:
        return parse_options("runtime_options", KServeOptions, spec.runtime_options)

    def _annotations(self, spec: DeploymentSpec) -> dict:
        raise NotImplementedError

    def _scaling_fields(self, spec: DeploymentSpec) -> dict:
        """minReplicas/maxReplicas, and scaleMetric/scaleTarget when a metric drives the scaling."""
        scaling = spec.autoscaling.resolved()
        fields: dict = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
        if scaling.kind == "hpa-cpu":
            fields |= {"scaleMetric": "cpu", "scaleTarget": scaling.target}
        elif scaling.kind == "kpa":
            fields |= {"scaleMetric": scaling.metric, "scaleTarget": scaling.target}
        return fields

    def _hpa_target(self, spec: DeploymentSpec) -> dict | None:
        return None


class KServeServerless(_KServe):
    """InferenceService on Knative: revisions, KServe's canary, KPA or Knative's HPA class."""

    kind = "kserve"
    mode = "Serverless"
    support = _SERVERLESS

    def client(self, spec: DeploymentSpec, live_object: dict, ingress: str) -> ClientEndpoint:
        """The ingress gateway, with the Host of the URL KServe's status reports (seed 002); the predictor's
        Service until there is one."""
        url = status_url(live_object)
        if not url:
            return super().client(spec, live_object, ingress)
        return ClientEndpoint(f"http://{ingress}", {"Host": url.split("://", 1)[-1].split("/", 1)[0]})

    def _annotations(self, spec: DeploymentSpec) -> dict:
        annotations = {DEPLOYMENT_MODE: self.mode}
        if spec.autoscaling.kind in ("kpa", "hpa-cpu"):
            annotations[KNATIVE_CLASS_ANNOTATION] = knative_class(spec.autoscaling.kind)
        return annotations


class KServeRawDeployment(_KServe):
    """InferenceService as a plain Deployment + Service (+ KServe's HPA); no Knative."""

    kind = "kserve-raw"
    mode = "RawDeployment"
    support = _RAW

    def _annotations(self, spec: DeploymentSpec) -> dict:
        autoscaler = {"none": "none", "hpa-cpu": "hpa", "hpa-qps": "external"}[spec.autoscaling.kind]
        return {DEPLOYMENT_MODE: self.mode, AUTOSCALER_CLASS: autoscaler}

    def _hpa_target(self, spec: DeploymentSpec) -> dict | None:
        """A QPS HPA scales the Deployment KServe names NAME-predictor."""
        if spec.autoscaling.kind != "hpa-qps":
            return None
        return {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{spec.object_name}-predictor"}


def inference_service_readiness(obj: dict, loaded_required: bool = False) -> Readiness:
    """KServe's verdict on an InferenceService (ModelMesh's also needs the model Loaded)."""
    status = obj.get("status") or {}
    summary = conditions_text(status.get("conditions", []))
    model = status.get("modelStatus") or {}
    states = model.get("states") or {}
    if model.get("transitionStatus") in ("BlockedByFailedLoad", "InvalidSpec") or "FailedToLoad" in states.values():
        failure = (model.get("lastFailureInfo") or {}).get("message") or model.get("transitionStatus")
        return Readiness(False, failed=f"{failure} ({summary or 'no conditions'})", conditions=summary)
    current = status.get("observedGeneration") == obj["metadata"].get("generation")
    loaded = states.get("activeModelState") == "Loaded" or not loaded_required
    if loaded_required:
        summary = f"{summary}; model {states.get('activeModelState') or 'Pending'}".lstrip("; ")
    return Readiness(current and loaded and condition_is(obj, "Ready"), conditions=summary)
