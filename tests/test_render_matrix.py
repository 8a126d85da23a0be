"""Every runtime x router x autoscaling combination: rendered and strictly valid, or refused with the reason."""

from __future__ import annotations

import json

import pytest
import yaml

from components.deployment.spec import DeploymentSpec, spec_from_mapping
from components.errors import InvalidInputError
from components.platform.kubernetes.render import APPLY_ORDER, render_deployment
from pipelines.cli import main
from pipelines.render_examples import MATRIX, golden_path, matrix_spec, renders
from tests.conftest import shared_path
from tests.support.schemas import kube_object_errors

VALID = [combination for combination in MATRIX if renders(*combination)]
REFUSED = [combination for combination in MATRIX if not renders(*combination)]


def test_the_matrix_renders_45_combinations_and_refuses_51():
    assert (len(MATRIX), len(VALID), len(REFUSED)) == (96, 45, 51)
    per_runtime = {runtime: sum(1 for c in VALID if c[0] == runtime) for runtime, _, _ in MATRIX}
    assert per_runtime == {"kserve": 6, "kserve-raw": 9, "modelmesh": 3, "ovms": 9, "tfserving": 9, "deployment": 9}


def test_an_hpa_scales_a_model_server_through_its_scale_subresource():
    objects = render_deployment(matrix_spec("ovms", "istio", "hpa-cpu"))
    server, hpa = (next(o for o in objects if o["kind"] == kind) for kind in ("ModelServer", "HorizontalPodAutoscaler"))
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "intel.com/v1alpha1", "kind": "ModelServer",
                                             "name": server["metadata"]["name"]}
    assert "replicas" not in server["spec"]["deployment_parameters"]  # the HPA owns the count


@pytest.mark.parametrize("combination", REFUSED, ids=".".join)
def test_a_refused_combination_names_the_field_the_runtime_and_a_fix(combination):
    runtime, router, autoscaling = combination
    with pytest.raises(InvalidInputError) as refused:
        render_deployment(matrix_spec(*combination))
    error = refused.value
    assert error.field in ("router", "autoscaling")
    assert f"runtime {runtime}" in error.problem and error.fix
    assert not golden_path(*combination).exists()  # never silently rendered


@pytest.mark.parametrize("combination", VALID, ids=".".join)
def test_every_rendered_object_is_strictly_valid(combination):
    shared = shared_path("schemas")
    objects = render_deployment(matrix_spec(*combination))
    assert objects, "a valid combination renders objects"
    for obj in objects:
        assert kube_object_errors(shared, obj) == [], f"{obj['kind']} {obj['metadata']['name']}"
    assert golden_path(*combination).is_file()


@pytest.mark.parametrize("combination", VALID, ids=".".join)
def test_objects_come_in_apply_order_with_meshserve_labels(combination):
    objects = render_deployment(matrix_spec(*combination))
    ranks = [APPLY_ORDER.index(obj["kind"]) for obj in objects]
    assert ranks == sorted(ranks)
    assert all(obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshserve" for obj in objects)
    assert len({(o["kind"], o["metadata"]["name"]) for o in objects}) == len(objects)


def test_the_strict_check_catches_a_misspelt_field_in_every_kind():
    shared = shared_path("schemas")
    kinds = {}
    for combination in VALID:
        for obj in render_deployment(matrix_spec(*combination)):
            kinds.setdefault((obj["apiVersion"], obj["kind"]), obj)
    assert len(kinds) >= 10
    for obj in kinds.values():
        broken = json.loads(json.dumps(obj))
        broken["spec" if "spec" in broken else "data"]["replicaz"] = 1
        assert any("replicaz" in error for error in kube_object_errors(shared, broken)), obj["kind"]


def test_hpa_qps_is_autoscaling_v2_external_not_v2beta1():
    objects = render_deployment(matrix_spec("tfserving", "none", "hpa-qps"))
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"][0]["external"]["target"] == {"type": "AverageValue", "averageValue": "10"}
    assert "metricName" not in json.dumps(hpa) and "targetAverageValue" not in json.dumps(hpa)


def test_kpa_scales_to_zero_through_kserve_fields():
    spec = spec_from_mapping({"name": "iris", "storage_uri": "pvc://models/iris", "model_format": "sklearn",
                              "autoscaling": {"kind": "kpa", "min_replicas": 0, "max_replicas": 5, "metric": "rps",
                                              "target": 50}})
    isvc = render_deployment(spec)[0]
    assert isvc["metadata"]["annotations"]["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"],
            predictor["scaleTarget"]) == (0, 5, "rps", 50)


def test_kserve_raw_cpu_scaling_is_kserves_own_hpa():
    objects = render_deployment(matrix_spec("kserve-raw", "none", "hpa-cpu"))
    assert [o["kind"] for o in objects] == ["InferenceService"]  # KServe creates the HPA itself
    isvc = objects[0]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert (isvc["spec"]["predictor"]["scaleMetric"], isvc["spec"]["predictor"]["scaleTarget"]) == ("cpu", 80)


def test_two_models_on_istio_write_no_object_in_common():
    def names(name):
        spec = matrix_spec("kserve-raw", "istio", "none")
        spec = DeploymentSpec(**{**spec.__dict__, "name": name})
        return {(o["kind"], o["metadata"]["name"]) for o in render_deployment(spec)}

    assert names("digits").isdisjoint(names("iris"))


def test_object_store_keys_stay_in_a_secret_referenced_by_name():
    spec = spec_from_mapping({"name": "iris", "storage_uri": "s3://models/iris/v1", "model_format": "sklearn",
                              "runtime": "kserve-raw", "storage": {"secret": "s3-keys",
                                                                   "s3_endpoint": "https://minio.storage:9000"}})
    objects = render_deployment(spec)
    account, isvc = objects
    assert account["kind"] == "ServiceAccount" and account["secrets"] == [{"name": "s3-keys"}]
    assert account["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.storage:9000"
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "iris-storage"
    assert not any(o["kind"] == "Secret" for o in objects)


def test_oss_is_read_through_its_s3_api_with_virtual_hosted_buckets():
    spec = spec_from_mapping({"name": "iris", "storage_uri": "oss://models/iris/v1", "model_format": "sklearn",
                              "storage": {"secret": "oss-keys", "oss_url": "oss-cn-beijing.aliyuncs.com"}})
    account, isvc = render_deployment(spec)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v1"
    annotations = account["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-endpoint"] == "oss-cn-beijing.aliyuncs.com"
    assert annotations["serving.kserve.io/s3-usevirtualbucket"] == "true"


def _render(argv, capsys):
    code = main(["render", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BASE = ["--name", "iris", "--model-format", "sklearn", "--storage-uri", "pvc://models/iris/v1"]
BAD_INPUT = {
    "unknown runtime": (["--runtime", "seldon"], "runtime: unknown runtime 'seldon'"),
    "bad name": (["--name", "Iris_Model"], "name: 'Iris_Model' is not a valid name"),
    "kpa on raw": (["--runtime", "kserve-raw", "--autoscaling", "kpa"], "autoscaling: kpa with runtime kserve-raw"),
    "kserve-canary on raw": (["--runtime", "kserve-raw", "--router", "kserve-canary"], "router: kserve-canary"),
    "sklearn on ovms": (["--runtime", "ovms"], "model_format: runtime ovms does not serve sklearn"),
    "s3 on tfserving": (["--runtime", "tfserving", "--model-format", "tensorflow", "--storage-uri", "s3://b/m"],
                        "storage_uri: TF Serving reads models from a mounted volume"),
    "s3 on ovms": (["--runtime", "ovms", "--model-format", "openvino", "--storage-uri", "s3://b/m"],
                   "storage_uri: the OpenVINO operator takes S3 keys only inline"),
    "hpa min > max": (["--runtime", "kserve-raw", "--autoscaling", "hpa-cpu", "--min-replicas", "5",
                       "--max-replicas", "2"], "max_replicas: 2 is below min_replicas 5"),
    "canary without primary": (["--runtime", "kserve-raw", "--router", "istio", "--version", "v2",
                                "--canary-percent", "10"], "primary_version: a canary split needs"),
    "canary with no router": (["--canary-percent", "10"], "canary_percent: no router splits traffic"),
    "canary over 100": (["--router", "kserve-canary", "--canary-percent", "101"], "canary_percent: 101 is out"),
    "unknown runtime option": (["--runtime-option", "gpu=1"], "runtime_options.gpu: is not an option here"),
    "runtime option not k=v": (["--runtime-option", "predictor"], "runtime_option: 'predictor' is not KEY=VALUE"),
    "bad cpu": (["--cpu", "two"], "resources.cpu: 'two' is not a Kubernetes quantity"),
    "bad toleration": (["--toleration", "a=b:Sometimes"], "toleration.effect: unknown effect 'Sometimes'"),
    "keys in the uri": (["--storage-uri", "s3://AKIA:secret@bucket/m"], "storage_uri: credentials or a query"),
    "scale to zero on hpa": (["--runtime", "kserve-raw", "--autoscaling", "hpa-cpu", "--min-replicas", "0"],
                             "min_replicas: only Knative's KPA scales to zero"),
    "oss without endpoint": (["--storage-uri", "oss://bucket/m"], "storage.oss_url: oss:// needs"),
    "modelmesh weighted canary": (["--runtime", "modelmesh", "--router", "asm", "--version", "v2",
                                   "--primary-version", "v1", "--canary-percent", "10"],
                                  "canary_percent: ModelMesh routes by model name"),
    "gpus on ovms": (["--runtime", "ovms", "--model-format", "openvino", "--gpus", "1"], "resources.gpus"),
    "unknown option of router none": (["--router-option", "gateway=g"],
                                      "router_options.gateway: is not an option here; use one of ingress"),
    "asm field on istio": (["--runtime", "kserve-raw", "--router", "istio", "--router-option",
                            "dynamic_subset_key=x"], "dynamic_subset_key: dynamic subsets are an Alibaba ASM"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=str)
def test_bad_input_is_one_line_naming_the_field_and_nothing_is_rendered(case, capsys):
    extra, expected = BAD_INPUT[case]
    code, out, err = _render(BASE + extra, capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and expected in err, err


def test_a_spec_file_renders_what_the_flags_do_and_flags_override_it(tmp_path, capsys):
    flags = ["--runtime", "kserve-raw", "--router", "istio", "--version", "v2", "--primary-version", "v1",
             "--canary-percent", "25", "--node-selector", "pool=gpu", "--toleration", "spot:NoSchedule"]
    _, from_flags, _ = _render(BASE + flags, capsys)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({
        "name": "iris", "model_format": "sklearn", "storage_uri": "pvc://models/iris/v1", "runtime": "kserve-raw",
        "router": "istio", "version": "v2", "primary_version": "v1", "canary_percent": 50,
        "placement": {"node_selector": {"pool": "gpu"}, "tolerations": ["spot:NoSchedule"]}}))
    code, from_file, _ = _render(["--spec", str(spec_file), "--canary-percent", "25"], capsys)
    assert code == 0 and from_file == from_flags
    assert "weight: 25" in from_file and "weight: 75" in from_file


def test_an_unknown_key_in_a_spec_file_is_named(tmp_path, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("name: iris\nmodel_format: sklearn\nstorage_uri: pvc://m/iris\nautoscaling: {kind: kpa, "
                         "max_replica: 3}\n")
    code, out, err = _render(["--spec", str(spec_file)], capsys)
    assert (code, out) == (2, "") and "autoscaling.max_replica: is not a spec field" in err


@pytest.mark.parametrize("model_format", ["sklearn", "tensorflow"])
def test_a_modelmesh_serving_runtime_is_strictly_valid_and_pins_the_model(model_format):
    shared = shared_path("schemas")
    spec = spec_from_mapping({"name": "mnist", "storage_uri": "s3://models/mnist/v1", "model_format": model_format,
                              "runtime": "modelmesh", "resources": {"cpu": "2", "memory": "4Gi"},
                              "placement": {"node_selector": {"pool": "inference"}},
                              "runtime_options": {"serving_runtime": True, "storage_key": "localMinIO"}})
    runtime, isvc = render_deployment(spec)
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1" and runtime["kind"] == "ServingRuntime"
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert isvc["spec"]["predictor"]["model"]["storage"] == {"key": "localMinIO", "path": "mnist/v1",
                                                             "parameters": {"bucket": "models"}}
    assert runtime["spec"]["nodeSelector"] == {"pool": "inference"}
    for obj in (runtime, isvc):
        assert kube_object_errors(shared, obj) == [], obj["kind"]


def test_storage_options_from_the_command_line_are_typed(capsys):
    code, out, _ = _render(["--name", "iris", "--model-format", "sklearn", "--storage-uri", "s3://models/iris/v1",
                            "--storage-secret", "keys", "--storage-option", "s3_use_https=false",
                            "--storage-option", "s3_endpoint=minio.storage:9000"], capsys)
    assert code == 0 and "serving.kserve.io/s3-usehttps: '0'" in out
    code, _, err = _render(["--name", "iris", "--model-format", "sklearn", "--storage-uri", "s3://models/iris/v1",
                            "--storage-option", "s3_use_https=maybe"], capsys)
    assert code == 2 and "storage.s3_use_https: 'maybe' is not true or false" in err


@pytest.mark.parametrize("storage_uri, runtime, storage", [
    ("s3://models/iris/v1", "kserve-raw", {"secret": "keys", "s3_endpoint": "minio:9000", "s3_region": "us-east-1"}),
    ("oss://models/iris/v1", "kserve", {"secret": "keys", "oss_url": "oss-cn-beijing.aliyuncs.com"}),
    ("oss://models/bert/v1", "tfserving", {"secret": "keys", "oss_url": "oss-cn-beijing.aliyuncs.com"}),
])
def test_storage_objects_are_strictly_valid(storage_uri, runtime, storage):
    shared = shared_path("schemas")
    spec = spec_from_mapping({"name": "iris", "version": "v1", "storage_uri": storage_uri, "runtime": runtime,
                              "model_format": "tensorflow" if runtime == "tfserving" else "sklearn",
                              "storage": storage})
    objects = render_deployment(spec)
    assert {"ServiceAccount", "PersistentVolume"} & {o["kind"] for o in objects}
    for obj in objects:
        assert kube_object_errors(shared, obj) == [], obj["kind"]
