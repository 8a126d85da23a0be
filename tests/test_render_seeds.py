"""The four seed articles' objects, reproduced field for field from the right inputs.

Each test renders a spec built from a seed's own values and compares every field of the seed's
objects with the rendered ones. What differs is listed, each with its reason (meshserve's labels,
rule names, a Secret reference where the seed wrote keys, autoscaling/v2 where it wrote v2beta1),
and the test fails on any difference not listed, in either direction.
"""

from __future__ import annotations

import pytest
import yaml

from components.deployment.spec import spec_from_mapping
from components.platform.kubernetes.render import render_deployment
from tests.conftest import shared_path
from tests.support.schemas import kube_object_errors

MESHSERVE_LABELS = "meshserve's labels on every object it renders (apply and clean-up find them by label)"


def flatten(value, path: str = "") -> dict[str, object]:
    """path -> leaf value (dict keys joined by '.', list items as [i])."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{path}.{key}" if path else key).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{path}[{i}]").items()}
    return {path: value}


def differences(seed: dict, rendered: dict) -> dict[str, str]:
    """Every path whose value differs: 'seed X, rendered Y' (a missing side is None)."""
    want, got = flatten(seed), flatten(rendered)
    return {path: f"seed {want.get(path)!r}, rendered {got.get(path)!r}"
            for path in sorted(set(want) | set(got)) if want.get(path) != got.get(path)}


def assert_reproduces(seed: dict, rendered: dict, explained: dict[str, str]) -> None:
    """The rendered object equals the seed's except exactly at the explained paths (prefix match)."""
    unexplained = {path: diff for path, diff in differences(seed, rendered).items()
                   if not any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in explained)}
    assert unexplained == {}, f"{rendered['kind']} differs from the seed where nothing explains it"
    unused = [p for p in explained if not any(d == p or d.startswith(p) for d in differences(seed, rendered))]
    assert unused == [], f"explained differences that do not occur: {unused}"


def by_kind(objects: list[dict]) -> dict[str, dict]:
    """The rendered objects by kind (one of each in a seed)."""
    return {obj["kind"]: obj for obj in objects}


def assert_strictly_valid(objects: list[dict]) -> None:
    shared = shared_path("schemas")
    for obj in objects:
        assert kube_object_errors(shared, obj) == [], obj["kind"]


SEED_000 = yaml.safe_load_all("""
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: tf-mnist
  namespace: modelmesh-serving
  annotations:
    serving.kserve.io/deploymentMode: ModelMesh
spec:
  predictor:
    model:
      modelFormat:
        name: tensorflow
      storage:
        parameters:
          type: pvc
          name: my-models-pvc
        path: mnist
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: modelmesh-serving
  namespace: modelmesh-serving
spec:
  host: modelmesh-serving
  trafficPolicy:
    loadBalancer:
      dynamicSubset:
        subsetSelectors:
        - fallbackPolicy: ANY_ENDPOINT
          keys:
          - modelmesh.asm.alibabacloud.com
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: vs-modelmesh-serving-service
  namespace: modelmesh-serving
spec:
  gateways:
  - grpc-gateway
  hosts:
  - '*'
  http:
  - headerToDynamicSubsetKey:
    - header: model
      key: modelmesh.asm.alibabacloud.com
    match:
    - port: 8008
    name: default
    route:
    - destination:
        host: modelmesh-serving
        port:
          number: 8033
""")


def test_seed_000_modelmesh_on_a_pvc_with_asm_dynamic_subsets():
    spec = spec_from_mapping({
        "name": "tf-mnist", "namespace": "modelmesh-serving", "runtime": "modelmesh", "router": "asm",
        "model_format": "tensorflow", "storage_uri": "pvc://my-models-pvc/mnist",
        "router_options": {"gateway": "grpc-gateway", "create_gateway": False, "rest_port": 0, "grpc_port": 8008,
                           "virtual_service": "vs-modelmesh-serving-service", "host_form": "short", "retries": 0,
                           "max_pending_requests": 0, "eject_after_5xx": 0}})
    objects = render_deployment(spec)
    rendered = by_kind(objects)
    seed = by_kind(list(SEED_000))
    assert list(rendered) == ["InferenceService", "DestinationRule", "VirtualService"]
    assert_reproduces(seed["InferenceService"], rendered["InferenceService"], {"metadata.labels": MESHSERVE_LABELS})
    assert_reproduces(seed["DestinationRule"], rendered["DestinationRule"], {
        "metadata.labels": MESHSERVE_LABELS,
        "spec.trafficPolicy.loadBalancer.simple": "meshserve always states the balancer within a subset"})
    assert_reproduces(seed["VirtualService"], rendered["VirtualService"], {
        "metadata.labels": MESHSERVE_LABELS,
        "spec.http[0].name": "rule names are ROUTE.LISTENER, unique across models (Envoy stats name them)"})
    assert_strictly_valid(objects)


SEED_001 = yaml.safe_load_all("""
apiVersion: intel.com/v1alpha1
kind: ModelServer
metadata:
  name: ovms-sample
spec:
  annotations:
    sidecar.istio.io/inject: "true"
  grpc_port: 8080
  image_name: registry.connect.redhat.com/intel/openvino-model-server:latest
  log_level: INFO
  model_name: "resnet"
  model_path: "gs://ovms-public-eu/resnet50-binary"
  plugin_config: '{"CPU_THROUGHPUT_STREAMS":"1"}'
  replicas: 1
  rest_port: 8081
  service_type: ClusterIP
  target_device: CPU
  resources:
    requests:
      memory: 500Mi
      cpu: 4
    limits:
      memory: 500Mi
      cpu: 4
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: ovms-destination-rule
spec:
  host: ovms-sample
  trafficPolicy:
    loadBalancer:
      simple: LEAST_CONN
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: gateway-ovms
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: grpc
      protocol: GRPC
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: shifting-example
spec:
  hosts:
  - "*"
  gateways:
  - gateway-ovms
  http:
  - match:
    - port: 80
    route:
    - destination:
        host: ovms-sample
        port:
          number: 8080
""")
# The seed's ModelServer is the operator's old flat layout; the pinned CRD nests the same settings.
_OVMS_LAYOUT = {
    "annotations": ("deployment_parameters", "openshift_service_mesh"), "grpc_port": ("service_parameters",),
    "rest_port": ("service_parameters",), "service_type": ("service_parameters",), "image_name": (),
    "log_level": ("server_settings",), "model_name": ("models_settings",), "model_path": ("models_settings",),
    "plugin_config": ("models_settings",), "target_device": ("models_settings",),
    "replicas": ("deployment_parameters",), "resources": ("deployment_parameters",),
}


def _ovms_in_pinned_layout(flat: dict) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        *parents, leaf = _OVMS_LAYOUT[key] + ((key,) if key != "annotations" else ())
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        if key == "annotations":  # the operator's switch that puts sidecar.istio.io/inject on the pods
            value = value["sidecar.istio.io/inject"] == "true"
        if key == "resources":
            value = {side: {k: str(v) for k, v in amounts.items()} for side, amounts in value.items()}
        node[leaf] = value
    return nested


def test_seed_001_openvino_behind_an_istio_gateway_with_least_conn():
    spec = spec_from_mapping({
        "name": "ovms-sample", "runtime": "ovms", "router": "istio", "model_format": "openvino",
        "storage_uri": "gs://ovms-public-eu/resnet50-binary", "resources": {"cpu": "4", "memory": "500Mi"},
        "runtime_options": {"image": "registry.connect.redhat.com/intel/openvino-model-server:latest",
                            "model_name": "resnet", "throughput_streams": "1"},
        "router_options": {"gateway": "gateway-ovms", "virtual_service": "shifting-example", "rest_port": 0,
                           "grpc_port": 80, "match_by": "port", "host_form": "short", "retries": 0,
                           "max_pending_requests": 0, "eject_after_5xx": 0}})
    objects = render_deployment(spec)
    rendered = by_kind(objects)
    seed = by_kind(list(SEED_001))
    seed["ModelServer"]["spec"] = _ovms_in_pinned_layout(seed["ModelServer"]["spec"])
    namespace = "the spec names the namespace (the seed applies into the current one)"
    istio_v1 = "networking.istio.io/v1 (GA); the seed's v1alpha3 is served by the same CRD"
    assert_reproduces(seed["ModelServer"], rendered["ModelServer"], {
        "metadata.labels": MESHSERVE_LABELS, "metadata.namespace": namespace,
        "spec.models_settings.single_model_mode": "stated: one model, no config map",
        "spec.models_repository": "the pinned CRD's storage block: a gs:// model is storage_type google"})
    assert_reproduces(seed["Gateway"], rendered["Gateway"], {
        "apiVersion": istio_v1, "metadata.labels": MESHSERVE_LABELS, "metadata.namespace": namespace})
    assert_reproduces(seed["DestinationRule"], rendered["DestinationRule"], {
        "apiVersion": istio_v1, "metadata.labels": MESHSERVE_LABELS, "metadata.namespace": namespace,
        "metadata.name": "one DestinationRule per version's Service, named after it"})
    assert_reproduces(seed["VirtualService"], rendered["VirtualService"], {
        "apiVersion": istio_v1, "metadata.labels": MESHSERVE_LABELS, "metadata.namespace": namespace,
        "spec.http[0].name": "rule names are ROUTE.LISTENER, unique across models (Envoy stats name them)"})
    assert_strictly_valid(objects)


SEED_002 = yaml.safe_load("""
apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
  namespace: kserve-test
spec:
  predictor:
    sklearn:
      storageUri: "https://alibabacloudservicemesh.oss-cn-beijing.aliyuncs.com/kserve/v0.7/model.joblib"
""")


def test_seed_002_sklearn_iris_inference_service():
    spec = spec_from_mapping({
        "name": "sklearn-iris", "namespace": "kserve-test", "runtime": "kserve", "router": "none",
        "model_format": "sklearn", "runtime_options": {"predictor": "framework"},
        "storage_uri": "https://alibabacloudservicemesh.oss-cn-beijing.aliyuncs.com/kserve/v0.7/model.joblib"})
    objects = render_deployment(spec)
    assert [obj["kind"] for obj in objects] == ["InferenceService"]
    assert_reproduces(SEED_002, objects[0], {
        "metadata.labels": MESHSERVE_LABELS,
        "metadata.annotations": "the deployment mode is stated, not left to the cluster's default",
        "spec.predictor.minReplicas": "autoscaling none: a fixed size, stated",
        "spec.predictor.maxReplicas": "autoscaling none: a fixed size, stated"})
    assert_strictly_valid(objects)


SEED_003 = yaml.safe_load_all("""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: model-csi-pv
spec:
  capacity:
    storage: 5Gi
  accessModes:
    - ReadWriteMany
  persistentVolumeReclaimPolicy: Retain
  csi:
    driver: ossplugin.csi.alibabacloud.com
    volumeHandle: model-csi-pv
    volumeAttributes:
      bucket: "my-bucket"
      url: "oss-cn-beijing.aliyuncs.com"
      akId: "<Your Access Key Id>"
      akSecret: "<Your Access Key Secret>"
      otherOpts: "-o max_stat_cache_size=0 -o allow_other"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: model-pvc
spec:
  accessModes:
  - ReadWriteMany
  resources:
    requests:
      storage: 5Gi
---
apiVersion: autoscaling/v2beta1
kind: HorizontalPodAutoscaler
metadata:
  name: bert-tfserving-hpa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: bert-tfserving-202107141745-tensorflow-serving
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: External
    external:
      metricName: sls_ingress_qps
      metricSelector:
        matchLabels:
          sls.project: "k8s-log-c210fbedb96674b9eaf15f2dc47d169a8"
          sls.logstore: "nginx-ingress"
          sls.ingress.route: "default-bert-tfserving-202107141745-tensorflow-serving-8501"
      targetAverageValue: 10
""")
SEED_003_SELECTOR = {"sls.project": "k8s-log-c210fbedb96674b9eaf15f2dc47d169a8", "sls.logstore": "nginx-ingress",
                     "sls.ingress.route": "default-bert-tfserving-202107141745-tensorflow-serving-8501"}


def test_seed_003_tf_serving_on_a_preemptible_gpu_pool_with_an_oss_volume_and_a_qps_hpa():
    spec = spec_from_mapping({
        "name": "bert-tfserving", "version": "202107141745", "runtime": "tfserving", "router": "none",
        "model_format": "tensorflow", "storage_uri": "oss://my-bucket/tensorflow", "resources": {"gpus": 1},
        "placement": {"node_selector": {"inference": "tensorflow"}},
        "storage": {"secret": "oss-secret", "oss_url": "oss-cn-beijing.aliyuncs.com", "volume": "model-csi-pv",
                    "claim": "model-pvc"},
        "autoscaling": {"kind": "hpa-qps", "min_replicas": 1, "max_replicas": 10, "target": 10,
                        "metric": "sls_ingress_qps", "selector": SEED_003_SELECTOR},
        "runtime_options": {"image": "tensorflow/serving:1.15.0-gpu", "model_name": "chnsenticorp",
                            "version_policy": "specific:1623831335"}})
    objects = render_deployment(spec)
    rendered = by_kind(objects)
    seed = by_kind(list(SEED_003))
    namespace = "the spec names the namespace (the seed applies into the current one)"
    binding = "the claim binds to this static volume (no StorageClass provisions it)"
    assert_reproduces(seed["PersistentVolume"], rendered["PersistentVolume"], {
        "metadata.labels": MESHSERVE_LABELS, "spec.storageClassName": binding,
        "spec.csi.volumeAttributes.akId": "keys never inline: the CSI driver reads them from the Secret",
        "spec.csi.volumeAttributes.akSecret": "keys never inline: the CSI driver reads them from the Secret",
        "spec.csi.nodePublishSecretRef": "the Secret holding akId and akSecret, by reference"})
    assert_reproduces(seed["PersistentVolumeClaim"], rendered["PersistentVolumeClaim"], {
        "metadata.labels": MESHSERVE_LABELS, "metadata.namespace": namespace,
        "spec.storageClassName": binding, "spec.volumeName": binding})
    v2 = "autoscaling/v2 (GA since 1.23) nests v2beta1's metricName, metricSelector and targetAverageValue"
    assert_reproduces(seed["HorizontalPodAutoscaler"], rendered["HorizontalPodAutoscaler"], {
        "apiVersion": v2, "spec.metrics[0].external": v2, "metadata.labels": MESHSERVE_LABELS,
        "metadata.namespace": namespace,
        "metadata.name": "named after the version's Deployment, as versions stand side by side"})
    external = rendered["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["external"]
    assert external == {"metric": {"name": "sls_ingress_qps", "selector": {"matchLabels": SEED_003_SELECTOR}},
                        "target": {"type": "AverageValue", "averageValue": "10"}}
    # arena serve tensorflow --name=bert-tfserving --model-name=chnsenticorp --selector=inference=tensorflow
    #   --gpus=1 --image=tensorflow/serving:1.15.0-gpu --data=model-pvc:/models --model-path=/models/tensorflow
    #   --version-policy=specific:1623831335
    deployment = rendered["Deployment"]
    assert deployment["metadata"]["name"] == "bert-tfserving-202107141745-tensorflow-serving"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"inference": "tensorflow"}
    assert container["image"] == "tensorflow/serving:1.15.0-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert pod["volumes"][0] == {"name": "models", "persistentVolumeClaim": {"claimName": "model-pvc",
                                                                             "readOnly": True}}
    assert [p["containerPort"] for p in container["ports"]] == [8500, 8501]
    config = rendered["ConfigMap"]["data"]["models.config"]
    assert 'name: "chnsenticorp"' in config and 'base_path: "/models/tensorflow"' in config
    assert "model_version_policy { specific { versions: 1623831335 } }" in config
    assert rendered["Service"]["metadata"]["name"] == deployment["metadata"]["name"]  # the Ingress's backend
    assert_strictly_valid(objects)


def test_the_comparison_fails_on_an_unexplained_or_a_needless_explanation():
    seed, rendered = {"kind": "X", "spec": {"a": 1, "b": [1]}}, {"kind": "X", "spec": {"a": 2, "b": [1]}}
    with pytest.raises(AssertionError, match="nothing explains it"):
        assert_reproduces(seed, rendered, {})
    with pytest.raises(AssertionError, match="do not occur"):
        assert_reproduces(seed, rendered, {"spec.a": "differs", "spec.b": "does not differ"})
    assert_reproduces(seed, rendered, {"spec.a": "differs"})
