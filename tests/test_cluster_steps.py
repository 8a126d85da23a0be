"""The deploy and rollout steps (core, KFP component, CLI) on the Kubernetes platform, against a real API server."""

from __future__ import annotations

import json

import pytest

from components.steps.deploy.core import cluster_spec_fields, run_deploy
from components.steps.rollout.core import run_finish
from pipelines.cli import main
from tests.support.kube_server import FakeController


@pytest.fixture
def cluster(kube_server, kube_namespace, monkeypatch):
    """KUBECONFIG pointing at the server (as a pod's in-cluster config would), and a controller marking ready."""
    monkeypatch.setenv("KUBECONFIG", str(kube_server.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    controller = FakeController(kube_server, kube_namespace, lambda obj: "ready")
    controller.start()
    yield kube_namespace
    controller.stop()


def test_the_deploy_step_reports_the_gateway_the_model_header_and_the_baseline(cluster):
    fields = cluster_spec_fields(namespace=cluster, runtime="kserve-raw", router="istio")
    first = run_deploy("digits", "pvc://models/digits/v1", 0, "kubernetes", fields | {"version": "v1"})
    assert (first.router_url, first.candidate_headers, first.has_baseline) == (
        "http://istio-ingressgateway.istio-system.svc.cluster.local:80",
        ["model: digits", "x-meshserve-track: canary"], False)
    assert run_finish("digits", "promote", "kubernetes", cluster) == "promoted v1"
    second = run_deploy("digits", "pvc://models/digits/v2", 10, "kubernetes", fields | {"version": "v2"})
    assert (second.version, second.baseline_storage_uri) == ("v2", "pvc://models/digits/v1")
    assert second.baseline_headers == ["model: digits", "x-meshserve-track: primary"]
    assert run_finish("digits", "rollback", "kubernetes", cluster) == "rolled back to v1"


def test_seed_002_clients_reach_a_serverless_model_through_the_ingress_with_its_host_header(cluster):
    fields = cluster_spec_fields(namespace=cluster, version="v1", runtime="kserve", router="none",
                                 runtime_options={"predictor": "framework"})
    deployment = run_deploy("sklearn-iris", "https://models.example/iris/model.joblib", 0, "kubernetes", fields)
    assert deployment.router_url == "http://istio-ingressgateway.istio-system.svc.cluster.local"
    assert deployment.candidate_headers == ["Host: sklearn-iris.example.com"]  # the InferenceService's status.url


def test_the_kfp_deploy_component_takes_the_deployment_spec(cluster, isolated_state):
    from kfp import local

    from components.steps.deploy.kfp_component import deploy

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(isolated_state / "kfp"),
               raise_on_error=True)
    task = deploy(name="tf-mnist", storage_uri="pvc://my-models-pvc/mnist", platform="kubernetes", namespace=cluster,
                  version_name="v1", model_format="tensorflow", runtime="modelmesh", router="asm",
                  router_options={"gateway": "grpc-gateway", "create_gateway": False})
    assert task.outputs["candidate_headers"] == ["model: tf-mnist-v1"]  # ModelMesh: each version its own name
    assert task.outputs["router_url"] == "http://istio-ingressgateway.istio-system.svc.cluster.local:8008"
    assert task.outputs["has_baseline"] == "false"


def test_the_cli_deploys_reports_and_promotes_on_a_cluster(cluster, kube_server, capsys):
    cluster_flags = ["--platform", "kubernetes", "--kubeconfig", str(kube_server.kubeconfig)]
    assert main(["deploy", *cluster_flags, "--name", "bert", "--namespace", cluster, "--version", "v1",
                 "--runtime", "tfserving", "--model-format", "tensorflow", "--storage-uri", "pvc://models/bert/v1",
                 "--gpus", "1", "--node-selector", "inference=tensorflow"]) == 0
    assert capsys.readouterr().out.startswith(f"deployed bert v1 in {cluster}: ready; clients: "
                                              f"http://bert-v1-tensorflow-serving.{cluster}.svc.cluster.local:8501")
    assert main(["promote", *cluster_flags, "--name", "bert", "--namespace", cluster]) == 0
    assert main(["status", *cluster_flags, "--namespace", cluster, "--json"]) == 0
    status = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert status["models"][0]["versions"] == [{"track": "primary", "version": "v1", "weight": 100, "ready": True,
                                                "storage_uri": "pvc://models/bert/v1", "instances": [],
                                                "owner": ""}]


def test_a_local_deploy_refuses_cluster_flags_and_runtimes_it_cannot_stand_in_for(capsys):
    code = main(["deploy", "--name", "digits", "--storage-uri", "pvc://m/digits/v1", "--router", "istio"])
    assert code == 2 and "router: applies to --platform kubernetes only" in capsys.readouterr().err
    code = main(["deploy", "--name", "digits", "--storage-uri", "pvc://m/digits/v1", "--runtime", "ovms"])
    assert code == 2 and ("runtime: 'ovms' does not run on the local platform; use kserve, kserve-raw, deployment, "
                          "modelmesh here") in capsys.readouterr().err


@pytest.mark.parametrize("runtime, router, model_format, protocol, models", [
    ("kserve-raw", "istio", "sklearn", "kserve-v1", ("digits", "digits")),
    ("tfserving", "istio", "tensorflow", "tfserving-rest", ("digits", "digits")),
    ("ovms", "istio", "openvino", "v2-grpc", ("digits", "digits")),
    ("modelmesh", "istio", "sklearn", "v2-grpc", ("digits-v2", "digits-v1")),  # each version a model of its own
    ("modelmesh", "none", "sklearn", "v2-grpc", ("digits-v2", "digits-v1")),
])
def test_the_analysis_speaks_the_runtimes_own_protocol_to_each_sides_model(cluster, kube_server, runtime, router,
                                                                          model_format, protocol, models):
    from components.platform.kubernetes.platform import KubernetesPlatform
    from components.platform.protocol import ModelRef

    fields = cluster_spec_fields(namespace=cluster, runtime=runtime, router=router, model_format=model_format)
    run_deploy("digits", "pvc://models/digits/v1", 0, "kubernetes", fields | {"version": "v1"})
    run_finish("digits", "promote", "kubernetes", cluster)
    deployment = run_deploy("digits", "pvc://models/digits/v2", 0, "kubernetes", fields | {"version": "v2"})
    sides = KubernetesPlatform(kube_server.admin()).analysis_sides("digits", cluster)
    assert sides.protocols[0] == protocol and (sides.candidate_model, sides.baseline_model) == models
    assert f"model: {models[1]}" in deployment.baseline_headers  # the primary, as its own spec names it
    KubernetesPlatform(kube_server.admin()).rollback(ModelRef("digits", cluster))


def test_a_held_canary_and_a_take_over_through_the_steps_and_the_cli(cluster, kube_server, capsys):
    """The finish step's hold leaves the run's canary for a person; status names the holder; a run's live lease
    needs --take-over from the command line."""
    fields = cluster_spec_fields(namespace=cluster, runtime="kserve-raw", router="istio")
    flags = ["--platform", "kubernetes", "--kubeconfig", str(kube_server.kubeconfig), "--namespace", cluster]
    run_deploy("digits", "pvc://models/digits/v1", 0, "kubernetes", fields | {"version": "v1"})
    run_finish("digits", "promote", "kubernetes", cluster)
    run_deploy("digits", "pvc://models/digits/v2", 10, "kubernetes", fields | {"version": "v2"}, owner="run-a")
    assert main(["rollback", *flags, "--name", "digits"]) == 2
    assert "digits's rollout is owned by run-a" in capsys.readouterr().err
    assert run_finish("digits", "hold", "kubernetes", cluster, owner="run-a").startswith("held")
    assert main(["status", *flags]) == 0
    assert "rollout: held by run-a for a person's promote or rollback" in capsys.readouterr().out
    assert main(["rollback", *flags, "--name", "digits"]) == 0  # held: the person it waited for
    run_deploy("digits", "pvc://models/digits/v2", 10, "kubernetes", fields | {"version": "v2"}, owner="run-c")
    assert main(["promote", *flags, "--name", "digits", "--take-over"]) == 0
    assert "promoted digits v2" in capsys.readouterr().out
