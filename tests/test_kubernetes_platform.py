"""The Kubernetes platform against a real kube-apiserver, the tests playing the controllers (status writes)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest

from components.deployment.spec import DeploymentSpec, spec_from_mapping
from components.errors import InvalidInputError, PlatformError
from components.platform.kubernetes.platform import KubernetesPlatform
from components.platform.kubernetes.render import routing_objects, version_objects
from components.platform.protocol import ModelRef, VersionStatus
from pipelines.cli import main
from tests.support.kube_server import FakeController
from tests.test_render_matrix import BAD_INPUT

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def digits(namespace: str, version: str, **changes) -> DeploymentSpec:
    """digits on KServe RawDeployment predictors behind Istio, at VERSION."""
    spec = spec_from_mapping({"name": "digits", "namespace": namespace, "version": version,
                              "storage_uri": f"pvc://models/digits/{version}", "model_format": "sklearn",
                              "runtime": "kserve-raw", "router": "istio"})
    return replace(spec, **changes)


@contextmanager
def controller(server, namespace, behaviour=lambda obj: "ready"):
    """The controllers' part, for the block's duration."""
    fake = FakeController(server, namespace, behaviour)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def platform(server, timeout: float = 20.0) -> KubernetesPlatform:
    return KubernetesPlatform(server.admin(), ready_timeout_s=timeout)


def get(server, namespace, kind, name, api_version="networking.istio.io/v1"):
    return server.admin().get(api_version, kind, name, namespace)


def isvc(server, namespace, name):
    return get(server, namespace, "InferenceService", name, "serving.kserve.io/v1beta1")


def weights(server, namespace) -> list[tuple[str, int | None]]:
    """The REST split of digits' VirtualService: (host's first label, weight)."""
    rule = next(r for r in get(server, namespace, "VirtualService", "digits")["spec"]["http"]
                if r["name"] == "digits.rest")
    return [(d["destination"]["host"].split(".")[0], d.get("weight")) for d in rule["route"]]


def routing_specs(server, namespace) -> dict:
    kube = server.admin()
    selector = "app.kubernetes.io/name=digits"
    return {(o["kind"], o["metadata"]["name"]): o["spec"] for kind in ("VirtualService", "DestinationRule", "Gateway")
            for o in kube.list("networking.istio.io/v1", kind, namespace, selector)}


def writes(server, since: int, namespace: str) -> list[str]:
    events = [e for e in server.audit(since) if e.get("objectRef", {}).get("namespace") == namespace]
    return [f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('name')}"
            for e in events if e["verb"] in WRITES]


def serve_v1(server, namespace):
    cluster = platform(server)
    cluster.deploy_spec(digits(namespace, "v1"))
    cluster.promote(ModelRef("digits", namespace))
    return cluster


def test_a_first_deploy_is_ready_and_takes_all_traffic(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        version = platform(kube_server).deploy_spec(digits(kube_namespace, "v1"))
        assert version.version == "v1"
        assert isvc(kube_server, kube_namespace, "digits-v1")["status"]["conditions"][0]["status"] == "True"
        assert weights(kube_server, kube_namespace) == [("digits-v1-predictor", None)]
        status = platform(kube_server).status(kube_namespace).model("digits")
        assert status.versions == (VersionStatus("canary", "v1", 100, True, "pvc://models/digits/v1"),)
        assert status.clients.headers == {"model": "digits"} and status.drift == ""


def test_applying_the_same_objects_twice_changes_nothing(kube_server, kube_namespace):
    kube = kube_server.admin()
    spec = digits(kube_namespace, "v1")
    objects = version_objects(spec) + routing_objects(spec)
    first = [kube.apply(obj)["metadata"]["resourceVersion"] for obj in objects]
    mark = kube_server.audit_length()
    second = [kube.apply(obj)["metadata"]["resourceVersion"] for obj in objects]
    assert first == second
    assert {e["responseStatus"]["code"] for e in kube_server.audit(mark) if e["verb"] == "patch"} == {200}


def test_deploying_the_serving_version_again_writes_nothing(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        mark = kube_server.audit_length()
        with pytest.raises(InvalidInputError, match="already serves this model"):
            cluster.deploy_spec(digits(kube_namespace, "v1"))
    assert writes(kube_server, mark, kube_namespace) == []


def test_rollout_canary_weight_then_promote_removes_the_old_version(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=20))
        assert weights(kube_server, kube_namespace) == [("digits-v1-predictor", 80), ("digits-v2-predictor", 20)]
        assert {name for _, name in routing_specs(kube_server, kube_namespace)} == {
            "digits", "digits-gateway", "digits-v1-predictor", "digits-v2-predictor"}
        promoted = cluster.promote(ModelRef("digits", kube_namespace))
    assert promoted.version == "v2"
    assert weights(kube_server, kube_namespace) == [("digits-v2-predictor", None)]
    assert isvc(kube_server, kube_namespace, "digits-v1") is None
    assert get(kube_server, kube_namespace, "DestinationRule", "digits-v1-predictor") is None
    assert list(cluster.status(kube_namespace).model("digits").tracks().values()) == ["v2"]


def test_a_candidate_never_ready_is_removed_with_its_conditions_and_routes_unchanged(kube_server, kube_namespace):
    behaviour = lambda obj: "unready" if obj["metadata"]["name"] == "digits-v2" else "ready"  # noqa: E731
    with controller(kube_server, kube_namespace, behaviour):
        cluster = serve_v1(kube_server, kube_namespace)
        before = routing_specs(kube_server, kube_namespace)
        started = time.monotonic()
        with pytest.raises(PlatformError) as failed:
            platform(kube_server, timeout=3).deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
    assert time.monotonic() - started < 15
    assert "was not ready after 3 s" in str(failed.value)
    assert "Ready=False (PredictorNotReady: 0/1 pods ready)" in str(failed.value)
    assert isvc(kube_server, kube_namespace, "digits-v2") is None
    assert routing_specs(kube_server, kube_namespace) == before
    assert list(cluster.status(kube_namespace).model("digits").tracks()) == ["primary"]


def test_after_a_blue_green_rollback_the_next_deploys_and_the_stable_service_keeps_its_ip(kube_server,
                                                                                        kube_namespace):
    blue_green = {"runtime": "deployment", "router": "none"}
    model = ModelRef("digits", kube_namespace)
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(digits(kube_namespace, "v1", **blue_green))
        cluster.promote(model)
        stable = get(kube_server, kube_namespace, "Service", "digits", "v1")["spec"]
        cluster.deploy_spec(digits(kube_namespace, "v2", **blue_green))
        cluster.rollback(model)  # the routes put back as they were
        # ... without meshserve taking the Service's allocated address as its own: the next apply would unset it
        # (the API server: "primary clusterIP can not be unset")
        cluster.deploy_spec(digits(kube_namespace, "v3", **blue_green))
        cluster.promote(model)
    now = get(kube_server, kube_namespace, "Service", "digits", "v1")["spec"]
    assert now["clusterIP"] == stable["clusterIP"] and now["selector"]["meshserve.io/version"] == "v3"


def test_a_candidate_that_fails_to_load_is_reported_at_once(kube_server, kube_namespace):
    behaviour = lambda obj: ("failed", "model.joblib: invalid load key")  # noqa: E731
    with controller(kube_server, kube_namespace, behaviour):
        with pytest.raises(PlatformError, match="InferenceService digits-v1 failed: model.joblib: invalid load key"):
            platform(kube_server, timeout=60).deploy_spec(digits(kube_namespace, "v1"))
    assert isvc(kube_server, kube_namespace, "digits-v1") is None
    assert routing_specs(kube_server, kube_namespace) == {}
    assert kube_server.admin().get("v1", "ConfigMap", "meshserve-rollout-digits", kube_namespace) is None


def test_rollback_restores_the_routing_objects_exactly(kube_server, kube_namespace):
    import json

    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        before = routing_specs(kube_server, kube_namespace)
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=30))
        assert routing_specs(kube_server, kube_namespace) != before
        state = kube_server.admin().get("v1", "ConfigMap", "meshserve-rollout-digits", kube_namespace)
        recorded = json.loads(state["metadata"]["annotations"]["meshserve.io/routes-before"])
        assert {(o["kind"], o["metadata"]["name"]): o["spec"] for o in recorded["objects"]} == before
        kept = cluster.rollback(ModelRef("digits", kube_namespace))
    assert kept.version == "v1"
    assert routing_specs(kube_server, kube_namespace) == before
    assert isvc(kube_server, kube_namespace, "digits-v2") is None
    assert "meshserve.io/routes-before" not in (kube_server.admin().get(
        "v1", "ConfigMap", "meshserve-rollout-digits", kube_namespace)["metadata"].get("annotations") or {})


def test_promote_and_rollback_refuse_a_target_that_is_not_ready(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace) as fake:
        cluster = serve_v1(kube_server, kube_namespace)
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
    before = routing_specs(kube_server, kube_namespace)
    kube = kube_server.admin()
    for name in ("digits-v2", "digits-v1"):  # the controller says the pods went away
        resource = kube.resource("serving.kserve.io/v1beta1", "InferenceService")
        resource.status.patch(body={"status": {"conditions": [{"type": "Ready", "status": "False",
                                                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
                              name=name, namespace=kube_namespace, content_type="application/merge-patch+json")
    with pytest.raises(PlatformError, match="cannot promote digits v2: it is not ready"):
        cluster.promote(ModelRef("digits", kube_namespace))
    with pytest.raises(PlatformError, match="cannot roll back onto digits v1: it is not ready"):
        cluster.rollback(ModelRef("digits", kube_namespace))
    assert routing_specs(kube_server, kube_namespace) == before
    assert isvc(kube_server, kube_namespace, "digits-v1") and isvc(kube_server, kube_namespace, "digits-v2")
    assert fake.marked  # the controller did run


def test_another_field_manager_owning_the_weights_is_a_clear_conflict(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
        service = get(kube_server, kube_namespace, "VirtualService", "digits")
        edited = {"apiVersion": service["apiVersion"], "kind": "VirtualService",
                  "metadata": {"name": "digits", "namespace": kube_namespace}, "spec": service["spec"]}
        for route in edited["spec"]["http"]:
            for destination in route["route"] if len(route["route"]) == 2 else []:
                destination["weight"] = 50
        kube_server.admin().resource(service["apiVersion"], "VirtualService").server_side_apply(
            body=edited, name="digits", namespace=kube_namespace, field_manager="ops-console", force_conflicts=True)
        with pytest.raises(PlatformError, match=r"conflict: VirtualService digits: .spec.http owned by field manager "
                                                r"ops-console"):
            cluster.promote(ModelRef("digits", kube_namespace))
    assert list(cluster.status(kube_namespace).model("digits").tracks()) == ["primary", "canary"]


def test_the_api_server_stopped_mid_rollout_is_a_clear_error_and_rerunning_converges(kube_server, kube_namespace):
    ready = threading.Event()
    behaviour = lambda obj: "ready" if obj["metadata"]["name"] == "digits-v1" or ready.is_set() else "pending"  # noqa: E731
    with controller(kube_server, kube_namespace, behaviour):
        cluster = serve_v1(kube_server, kube_namespace)
        outcome = {}

        def deploy():
            try:
                platform(kube_server, timeout=60).deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
            except PlatformError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=deploy)
        worker.start()
        deadline = time.monotonic() + 20
        while isvc(kube_server, kube_namespace, "digits-v2") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        command = kube_server.stop_apiserver()
        try:
            worker.join(timeout=30)
        finally:
            kube_server.restart_apiserver(command)
        assert "cannot reach the API server" in str(outcome.get("error"))
        ready.set()
        platform(kube_server, timeout=30).deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
        assert weights(kube_server, kube_namespace) == [("digits-v1-predictor", 90), ("digits-v2-predictor", 10)]
        assert list(cluster.status(kube_namespace).model("digits").tracks().values()) == ["v1", "v2"]


# A cluster deploy reads the primary from the cluster: a canary weight with none is no error there (the first
# version takes all traffic), and a --primary-version that is not the cluster's is.
CLUSTER_BAD_INPUT = {case: value for case, value in BAD_INPUT.items() if case != "canary without primary"} | {
    "modelmesh weighted canary": (BAD_INPUT["modelmesh weighted canary"][0],
                                  "primary_version: iris's primary on the cluster is no version")}


@pytest.mark.parametrize("case", CLUSTER_BAD_INPUT, ids=str)
def test_bad_input_creates_no_object_on_the_server(case, kube_server, kube_namespace, capsys):
    extra, expected = CLUSTER_BAD_INPUT[case]
    mark = kube_server.audit_length()
    base = ["--name", "iris", "--model-format", "sklearn", "--storage-uri", "pvc://models/iris/v1",
            "--version", "v1", "--namespace", kube_namespace]
    code = main(["deploy", "--platform", "kubernetes", "--kubeconfig", str(kube_server.kubeconfig),
                 "--ready-timeout", "5", *base, *extra])
    assert code == 2 and expected in capsys.readouterr().err
    assert writes(kube_server, mark, kube_namespace) == []


def test_an_api_the_server_does_not_serve_is_named_with_its_fix(kube_server, kube_namespace):
    kube = kube_server.admin()
    with pytest.raises(PlatformError, match=r"no trainedmodels.serving.kserve.io \(.*\); install KServe"):
        kube.resource("serving.kserve.io/v1alpha1", "TrainedModel")
    spec = spec_from_mapping({"name": "bert", "namespace": kube_namespace, "version": "v1", "runtime": "tfserving",
                              "model_format": "tensorflow", "storage_uri": "pvc://models/bert/v1",
                              "autoscaling": {"kind": "hpa-cpu", "min_replicas": 1, "max_replicas": 3}})
    with controller(kube_server, kube_namespace):
        with pytest.raises(PlatformError, match="does not serve autoscaling/v2 HorizontalPodAutoscaler; use "
                                                "Kubernetes 1.23 or later"):
            platform(kube_server).deploy_spec(spec)
    assert kube.list("apps/v1", "Deployment", kube_namespace) == []  # what it had applied was removed


def test_a_field_the_server_drops_is_reported(kube_server, kube_namespace):
    spec = digits(kube_namespace, "v1")
    service = routing_objects(spec)[-1]
    service["spec"]["http"][0]["mirrorPercentage"] = {"value": 5.0, "valu": 1}
    with pytest.raises(PlatformError, match=r"dropped .spec.http\[0\].mirrorPercentage.valu from VirtualService"):
        kube_server.admin().apply(service)


def test_asm_dynamic_subsets_survive_on_the_extended_crds(kube_server, kube_namespace):
    spec = spec_from_mapping({"name": "tf-mnist", "namespace": kube_namespace, "version": "v1",
                              "runtime": "modelmesh", "router": "asm", "model_format": "tensorflow",
                              "storage_uri": "pvc://my-models-pvc/mnist"})
    with controller(kube_server, kube_namespace):
        platform(kube_server).deploy_spec(spec)
    rule = kube_server.admin().get("networking.istio.io/v1beta1", "DestinationRule", "modelmesh-serving",
                                   kube_namespace)
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["dynamicSubset"]["subsetSelectors"][0]["keys"] == [
        "modelmesh.asm.alibabacloud.com"]


def test_modelmesh_waits_for_the_model_to_be_loaded(kube_server, kube_namespace):
    import json

    def behaviour(obj):
        return "ready"

    spec = spec_from_mapping({"name": "tf-mnist", "namespace": kube_namespace, "version": "v1",
                              "runtime": "modelmesh", "router": "none", "model_format": "tensorflow",
                              "storage_uri": "pvc://my-models-pvc/mnist"})
    from components.runtimes.modelmesh import ModelMeshRuntime

    ready = json.loads(json.dumps({"metadata": {"generation": 1}, "status": {
        "observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}],
        "modelStatus": {"states": {"activeModelState": "Loading"}}}}))
    assert not ModelMeshRuntime().readiness(ready).ready
    ready["status"]["modelStatus"]["states"]["activeModelState"] = "Loaded"
    assert ModelMeshRuntime().readiness(ready).ready
    with controller(kube_server, kube_namespace, behaviour):
        platform(kube_server).deploy_spec(spec)
    assert isvc(kube_server, kube_namespace, "tf-mnist-v1")["metadata"]["annotations"][
        "serving.kserve.io/deploymentMode"] == "ModelMesh"


def test_two_models_rolled_out_at_once_do_not_touch_each_others_objects(kube_server, kube_namespace, tmp_path):
    from components.kube.client import connect
    from tests.support.kube_server import rbac_objects, steps_kubeconfig

    accounts = ("steps-digits", "steps-iris")
    for obj in rbac_objects(kube_namespace, accounts=accounts):
        kube_server.admin().apply(obj)
    clusters = {name: KubernetesPlatform(connect(str(steps_kubeconfig(kube_server, kube_namespace, account,
                                                                        tmp_path))), ready_timeout_s=20)
                for name, account in zip(("digits", "iris"), accounts, strict=True)}
    failures = []

    def roll_out(name):
        try:
            cluster = clusters[name]
            cluster.deploy_spec(replace(digits(kube_namespace, "v1"), name=name, storage_uri=f"pvc://models/{name}/v1"))
            cluster.promote(ModelRef(name, kube_namespace))
            cluster.deploy_spec(replace(digits(kube_namespace, "v2", canary_percent=25), name=name,
                                   storage_uri=f"pvc://models/{name}/v2"))
            cluster.promote(ModelRef(name, kube_namespace))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(f"{name}: {exc}")

    mark = kube_server.audit_length()
    with controller(kube_server, kube_namespace):
        workers = [threading.Thread(target=roll_out, args=(name,)) for name in clusters]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    assert failures == []
    for name, account in zip(("digits", "iris"), accounts, strict=True):
        touched = {e["objectRef"].get("name") for e in kube_server.audit(mark)
                   if e["user"]["username"] == f"system:serviceaccount:{kube_namespace}:{account}"
                   and e["verb"] in WRITES}
        other = "iris" if name == "digits" else "digits"
        assert touched and all(not n.startswith(other) and other not in n for n in touched), touched
        assert all(n.startswith(name) or n == f"meshserve-rollout-{name}" for n in touched), touched
    assert list(clusters["digits"].status(kube_namespace).model("iris").tracks().values()) == ["v2"]


def test_a_conflicting_write_to_the_rollout_record_is_read_again_and_retried(kube_server, kube_namespace):
    other = kube_server.admin()  # another client, writing the record between the platform's read and write
    meddled = []

    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        kube = cluster.kube
        read = kube.get

        def read_then_meddle(api_version, kind, name, namespace=""):
            obj = read(api_version, kind, name, namespace)
            if kind == "ConfigMap" and obj is not None and len(meddled) < 4:
                meddled.append(name)
                other.resource("v1", "ConfigMap").patch(
                    body={"metadata": {"labels": {"audited": str(len(meddled))}}}, name=name, namespace=namespace,
                    content_type="application/merge-patch+json")
            return obj

        kube.get = read_then_meddle
        mark = kube_server.audit_length()
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
        cluster.rollback(ModelRef("digits", kube_namespace))
    updates = [e["responseStatus"]["code"] for e in kube_server.audit(mark)
               if e["verb"] == "update" and e["objectRef"].get("name") == "meshserve-rollout-digits"]
    assert len(meddled) == 4 and updates.count(409) >= 3  # each stale write refused by the server, then retried
    assert updates.count(200) == 4  # lease taken and released, twice
    assert list(cluster.status(kube_namespace).model("digits").tracks()) == ["primary"]
    labels = other.get("v1", "ConfigMap", "meshserve-rollout-digits", kube_namespace)["metadata"]["labels"]
    assert labels["audited"] == "4"  # the other writer's change survived the retries


def test_an_analysis_baseline_copy_is_reached_by_its_track_only_and_removed(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=10))
        before = weights(kube_server, kube_namespace)
        sides = cluster.start_baseline("digits", kube_namespace)
        assert sides.baseline_version == "v1-baseline"
        assert sides.baseline_headers == ("model: digits", "x-meshserve-track: baseline")
        assert sides.candidate_headers == ("model: digits", "x-meshserve-track: canary")
        copy = isvc(kube_server, kube_namespace, "digits-v1-baseline")
        assert copy["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/digits/v1"
        rules = {r["name"]: r for r in get(kube_server, kube_namespace, "VirtualService", "digits")["spec"]["http"]}
        pinned = rules["digits.rest.baseline"]
        assert pinned["match"][0]["headers"]["x-meshserve-track"] == {"exact": "baseline"}
        assert pinned["route"][0]["destination"]["host"].startswith("digits-v1-baseline-predictor.")
        assert weights(kube_server, kube_namespace) == before  # the copy takes no weight
        versions = cluster.status(kube_namespace).model("digits").versions
        assert [(v.track, v.weight) for v in versions] == [("primary", 90), ("canary", 10), ("baseline", 0)]
        cluster.stop_baseline("digits", kube_namespace)
        assert isvc(kube_server, kube_namespace, "digits-v1-baseline") is None
        rules = get(kube_server, kube_namespace, "VirtualService", "digits")["spec"]["http"]
        assert not any(rule["name"].endswith(".baseline") for rule in rules)
        assert weights(kube_server, kube_namespace) == before


def test_a_first_deploy_has_no_primary_to_copy_and_is_analysed_alone(kube_server, kube_namespace):
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(digits(kube_namespace, "v1"))
        with pytest.raises(InvalidInputError, match="no primary to copy"):
            cluster.start_baseline("digits", kube_namespace)
        sides = cluster.analysis_sides("digits", kube_namespace)
        assert not sides.with_baseline and sides.candidate_headers == ("model: digits",)


def _state_config_map(namespace: str, name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"meshserve-rollout-{name}", "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "meshserve",
                                    "app.kubernetes.io/component": "rollout", "app.kubernetes.io/name": name}},
            "data": data}


def test_a_namespace_that_does_not_exist_is_one_line_naming_it(kube_server, capsys):
    """deploy into a namespace the server does not have: one line naming the namespace, exit 2, nothing written;
    status of it reports no model rather than a traceback."""
    since = kube_server.audit_length()
    code = main(["deploy", "--platform", "kubernetes", "--kubeconfig", str(kube_server.kubeconfig), "--name",
                 "digits", "--namespace", "nowhere-at-all", "--storage-uri", "pvc://models/digits/v1",
                 "--model-format", "sklearn", "--version", "v1", "--runtime", "kserve-raw", "--router", "istio"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nowhere-at-all" in err and "namespace" in err, err
    refused = [e["responseStatus"]["code"] for e in kube_server.audit(since)
               if e.get("objectRef", {}).get("namespace") == "nowhere-at-all" and e["verb"] in WRITES]
    assert refused and set(refused) == {404}  # tried once, refused by the server, not retried in a loop
    assert main(["status", "--platform", "kubernetes", "--kubeconfig", str(kube_server.kubeconfig), "--namespace",
                 "nowhere-at-all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == []  # as kubectl: no resources found there


def test_a_record_that_is_not_json_is_reported_and_its_neighbours_still_are(kube_server, kube_namespace):
    """A rollout ConfigMap someone edited into garbage: status reports that model's error and the others as
    usual; promoting it is one error naming the ConfigMap and how to recover."""
    with controller(kube_server, kube_namespace):
        cluster = serve_v1(kube_server, kube_namespace)
        kube_server.admin().create(_state_config_map(kube_namespace, "broken", {"record": "{not json"}))
        report = cluster.status(kube_namespace)
        assert "does not hold a meshserve rollout record" in report.model("broken").error
        assert list(report.model("digits").tracks().values()) == ["v1"]
        with pytest.raises(PlatformError, match=r"^state: ConfigMap meshserve-rollout-broken does not hold .*"
                                                r"delete it to forget the rollout"):
            cluster.promote(ModelRef("broken", kube_namespace))


def test_an_empty_record_left_by_a_killed_deploy_is_skipped_and_the_next_deploy_converges(kube_server,
                                                                                         kube_namespace):
    """A deploy killed after creating its ConfigMap and before writing a record: status lists nothing for the
    model (no crash for the namespace), and deploying again takes over the ConfigMap and serves."""
    kube_server.admin().create(_state_config_map(kube_namespace, "digits", {}))
    cluster = platform(kube_server)
    assert cluster.status(kube_namespace).model("digits") is None
    with controller(kube_server, kube_namespace):
        cluster.deploy_spec(digits(kube_namespace, "v1"))
        cluster.promote(ModelRef("digits", kube_namespace))
        assert cluster.status(kube_namespace).model("digits").tracks() == {"primary": "v1"}


def test_a_server_certificate_nobody_trusts_is_named(kube_server, tmp_path, capsys):
    """The kubeconfig's CA is not the one that signed the server's certificate: the error names the
    certificate problem (TLS is verified; nothing says "no detail")."""
    import yaml

    config = yaml.safe_load(kube_server.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority", None)
    cluster.pop("insecure-skip-tls-verify", None)  # the test server's own kubeconfig skips verification
    cluster["certificate-authority-data"] = __import__("base64").b64encode(_another_ca(tmp_path)).decode()
    untrusting = tmp_path / "kubeconfig"
    untrusting.write_text(yaml.safe_dump(config))
    code = main(["status", "--platform", "kubernetes", "--kubeconfig", str(untrusting)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "TLS: the server's certificate was not trusted" in err and "no detail" not in err


def _another_ca(tmp_path) -> bytes:
    """A self-signed CA certificate (PEM) unrelated to the API server's."""
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=not-the-cluster-ca",
                    "-days", "1", "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.pem")],
                   check=True, capture_output=True)
    return (tmp_path / "ca.pem").read_bytes()


# KServe Serverless: the candidate goes into the model's one InferenceService with canaryTrafficPercent (seed 002).

def serverless(namespace: str, version: str, canary: int = 0) -> DeploymentSpec:
    return digits(namespace, version, runtime="kserve", router="kserve-canary", canary_percent=canary)


def predictor_spec(server, namespace) -> dict:
    return isvc(server, namespace, "digits")["spec"]["predictor"]


def test_a_serverless_canary_rolls_out_inside_the_inferenceservice_and_promotes(kube_server, kube_namespace):
    model = ModelRef("digits", kube_namespace)
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(serverless(kube_namespace, "v1", 10))  # a first deploy takes all traffic
        cluster.promote(model)
        assert "canaryTrafficPercent" not in predictor_spec(kube_server, kube_namespace)
        generation = isvc(kube_server, kube_namespace, "digits")["metadata"]["generation"]
        cluster.deploy_spec(serverless(kube_namespace, "v2", 10))
        predictor = predictor_spec(kube_server, kube_namespace)
        assert predictor["canaryTrafficPercent"] == 10 and predictor["model"]["storageUri"].endswith("/v2")
        assert isvc(kube_server, kube_namespace, "digits")["metadata"]["annotations"][
            "serving.kserve.io/enable-tag-routing"] == "true"
        # one change of the spec, so one new revision: the new model and its share arrive together (the new
        # revision never takes all traffic first)
        assert isvc(kube_server, kube_namespace, "digits")["metadata"]["generation"] == generation + 1
        status = cluster.status(kube_namespace).model("digits")
        assert [(v.track, v.version, v.weight) for v in status.versions] == [("primary", "v1", 90),
                                                                             ("canary", "v2", 10)]
        sides = cluster.analysis_sides("digits", kube_namespace)  # each revision alone, by KServe's tag routing
        assert sides.candidate_headers == (f"Host: latest-digits-predictor.{kube_namespace}.example.com",)
        assert sides.baseline_headers == (f"Host: prev-digits-predictor.{kube_namespace}.example.com",)
        assert sides.candidate_url == sides.baseline_url == "http://istio-ingressgateway.istio-system.svc.cluster.local"
        assert cluster.promote(model).version == "v2"
        predictor = predictor_spec(kube_server, kube_namespace)
        assert "canaryTrafficPercent" not in predictor and predictor["model"]["storageUri"].endswith("/v2")
        time.sleep(0.5)  # the controller rolls the latest revision out
        assert [(v.track, v.version, v.weight) for v in cluster.status(kube_namespace).model("digits").versions] == [
            ("primary", "v2", 100)]


def test_a_serverless_rollback_restores_the_recorded_inferenceservice_exactly(kube_server, kube_namespace):
    model = ModelRef("digits", kube_namespace)
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(serverless(kube_namespace, "v1"))
        cluster.promote(model)
        before = isvc(kube_server, kube_namespace, "digits")
        cluster.deploy_spec(serverless(kube_namespace, "v2", 25))
        assert predictor_spec(kube_server, kube_namespace)["canaryTrafficPercent"] == 25
        assert cluster.rollback(model).version == "v1"
        after = isvc(kube_server, kube_namespace, "digits")
        assert after["spec"] == before["spec"]  # storageUri back, canaryTrafficPercent gone: the recorded spec
        assert after["metadata"]["labels"] == before["metadata"]["labels"]
        assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
        assert list(cluster.status(kube_namespace).model("digits").tracks().values()) == ["v1"]


def test_a_serverless_canary_that_never_gets_ready_puts_the_inferenceservice_back(kube_server, kube_namespace):
    model = ModelRef("digits", kube_namespace)
    with controller(kube_server, kube_namespace,
                    lambda obj: ("failed", "model.joblib: invalid load key") if obj["spec"]["predictor"]["model"][
                        "storageUri"].endswith("/v2") else "ready"):
        cluster = platform(kube_server, timeout=5.0)
        cluster.deploy_spec(serverless(kube_namespace, "v1"))
        cluster.promote(model)
        before = isvc(kube_server, kube_namespace, "digits")["spec"]
        with pytest.raises(PlatformError, match="invalid load key"):
            cluster.deploy_spec(serverless(kube_namespace, "v2", 10))
        assert isvc(kube_server, kube_namespace, "digits")["spec"] == before  # v1 serves, as it did
        assert cluster.status(kube_namespace).model("digits").tracks() == {"primary": "v1"}
