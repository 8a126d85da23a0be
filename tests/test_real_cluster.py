"""Rollouts on a real single-node cluster: meshserve's model-server image as the `deployment` runtime, pods made
Ready by the real Deployment controller and kubelet, a real PersistentVolume, ClusterIPs through kube-proxy; and
the train-to-serve WorkflowTemplate's first steps run by the steps image as Kubernetes Jobs, with
`manifests/rbac`'s ServiceAccount and the pod's in-cluster config.

No KServe, Istio, KFP or Argo runs there, so meshserve's own parts carry the rollout: the runtime's objects,
the blue/green stable Service (router `none`), the paired benchmark, the gate, promote and rollback. The
benchmark reaches the Services at their ClusterIPs (kube-proxy's rules on this machine; no DNS runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from components import __version__
from components.analysis.run import analyze
from components.deployment.spec import DeploymentSpec
from components.errors import PlatformError
from components.gate.decision import decide
from components.gate.policy import load_policy
from components.platform.kubernetes.platform import KubernetesPlatform
from components.platform.protocol import ClusterAccess, ModelRef
from components.steps.benchmark.core import run_paired_benchmark_step
from components.steps.images import STEP_IMAGE
from components.storage import upload_model
from components.training import TrainConfig, train_model
from pipelines.compile import COMPILED_DIR, REPO_ROOT
from tests.support.argo_dag import run_dag
from tests.support.containers import podman
from tests.support.kube_jobs import IMAGE_UID, JobExecutor
from tests.support.kube_node import WORK

NAMESPACE = "meshserve-real"
ROW = {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}


@pytest.fixture(scope="module")
def node(kube_node, say):
    """The session's node, with the namespace and a claim `models` on a hostPath PersistentVolume."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make test installs it): the model-server image cannot be built")
    if kube_node.start_seconds:
        say(f"node started (containerd, etcd + apiserver, controllers, kubelet, kube-proxy) in "
            f"{kube_node.start_seconds:.1f} s")
    root = WORK / "pvc" / NAMESPACE
    (root / "models").mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    os.chown(root / "models", IMAGE_UID, 0)  # the upload step's Job writes there, as the image's user
    kube_node.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=180)
    kube_node.kubectl("delete", "pv", f"{NAMESPACE}-models", "--ignore-not-found", "--wait=true")
    kube_node.kubectl("create", "namespace", NAMESPACE)
    claim = [{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{NAMESPACE}-models"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "storageClassName": "",
                       "hostPath": {"path": str(root / "models"), "type": "Directory"},
                       "claimRef": {"namespace": NAMESPACE, "name": "models"}}},
             {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models",
                                                                                "namespace": NAMESPACE},
              "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": f"{NAMESPACE}-models",
                       "resources": {"requests": {"storage": "1Gi"}}}}]
    kube_node.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": claim}))
    os.environ["MESHSERVE_PVC_ROOT"] = str(root)  # for the module's fixtures; each test's is set by `claim_root`
    yield kube_node
    kube_node.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)  # the node's stop ends its pods
    kube_node.kubectl("delete", "pv", f"{NAMESPACE}-models", "--wait=false", check=False)


@pytest.fixture(autouse=True)
def claim_root(node, monkeypatch):
    """pvc://models/... is the hostPath volume behind the claim, here as in the pods."""
    monkeypatch.setenv("MESHSERVE_PVC_ROOT", str(WORK / "pvc" / NAMESPACE))


def in_node(node, target: str) -> tuple[str, float]:
    """One of meshserve's images, built (cached layers) and imported into the node: its local tag, and the
    seconds both took."""
    started, built = time.monotonic(), f"ghcr.io/meshserve/{target}:{__version__}"
    podman("build", "--quiet", "-f", "runtime_images/Dockerfile", "--target", target, "-t", built, str(REPO_ROOT),
           timeout=3600)
    return node.import_image(built), time.monotonic() - started


@pytest.fixture(scope="module")
def image(node, say) -> str:
    """meshserve's scikit-learn model-server image, in the node."""
    local, seconds = in_node(node, "model-server-sklearn")
    say(f"model-server-sklearn built and in the node's containerd in {seconds:.1f} s")
    return local


@pytest.fixture(scope="module")
def steps_image(node):
    """meshserve's steps image (2 GB) on its way into the node, in the background (built by test_images earlier:
    cached). The crash-loop test asks for it first, so that the import runs while that test waits on the kubelet;
    the Jobs take the result (the local tag, and the seconds it took)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="steps-image") as pool:
        yield pool.submit(in_node, node, "steps")


@pytest.fixture(scope="module")
def versions(node, tmp_path_factory) -> dict[str, str]:
    """Published digits versions on the claim: two models (seeds 0 and 1), and one whose model file is broken."""
    work = tmp_path_factory.mktemp("models")
    uris = {}
    for label, seed in (("first", 0), ("second", 1)):
        trained = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=seed), work / label)
        uris[label] = upload_model(trained.model_dir, "pvc://models/digits").storage_uri
    broken = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=2), work / "broken").model_dir
    uris["broken"] = upload_model(broken, "pvc://models/digits").storage_uri
    (Path(os.environ["MESHSERVE_PVC_ROOT"]) / "models" / "digits" / version_of(uris["broken"]) /
     "model.joblib").write_bytes(b"not a model")
    return uris


def version_of(storage_uri: str) -> str:
    """The version a published URI names (its last segment)."""
    return storage_uri.rsplit("/", 1)[1]


def spec(image: str, storage_uri: str) -> DeploymentSpec:
    """The digits model as the deployment runtime serves it, blue/green (router none), the image from the node."""
    return DeploymentSpec(name="digits", namespace=NAMESPACE, storage_uri=storage_uri, model_format="sklearn",
                          runtime="deployment", router="none",
                          runtime_options={"image": image, "image_pull_policy": "Never"})


def cluster(node, ready_timeout_s: float = 120) -> KubernetesPlatform:
    return KubernetesPlatform.connect(ClusterAccess(str(node.kubeconfig), ready_timeout_s=ready_timeout_s))


def service_url(node, name: str) -> str:
    """A Service's REST address at its ClusterIP, once kube-proxy rewrites it to the Service's pods (before that,
    a packet to the ClusterIP would follow the default route off this machine)."""
    ip = node.kubectl("-n", NAMESPACE, "get", "service", name, "-o", "jsonpath={.spec.clusterIP}").stdout
    deadline = time.monotonic() + 30
    while f"-d {ip}/32" not in subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"kube-proxy has no rule for Service {name} ({ip}) after 30 s"
        time.sleep(0.2)
    return f"http://{ip}:8080"


def pods(node, version: str, model: str = "digits") -> list[dict]:
    """The pods of one version of one model (two models may hold the same bytes, so the same version name)."""
    listed = node.kubectl("-n", NAMESPACE, "get", "pods", "-l",
                          f"app.kubernetes.io/name={model},meshserve.io/version={version}", "-o", "json")
    return json.loads(listed.stdout)["items"]


def gone(node, version: str, timeout: float = 150) -> bool:
    """Whether the version's pods are gone within `timeout` (usually 8-11 s after their Deployment's deletion on
    this node; once 50 s, the garbage collector and the kubelet's cleanup taking their time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pods(node, version):
            return True
        time.sleep(1)
    return False


def serving_primary(platform: KubernetesPlatform, image: str, versions: dict[str, str]) -> str:
    """digits with a primary and no canary, whatever an earlier test left (a failed one may leave its canary);
    the primary's version."""
    model = ModelRef("digits", NAMESPACE)
    record = platform.status(NAMESPACE).model("digits")
    if record is not None and "canary" in record.tracks():
        platform.rollback(model)
    if record is None or "primary" not in record.tracks():
        platform.deploy_spec(spec(image, versions["second"]))
        platform.promote(model)
    return platform.status(NAMESPACE).model("digits").tracks()["primary"]


def infer(url: str, model: str = "digits") -> int:
    request = urllib.request.Request(f"{url}/v2/models/{model}/infer", data=json.dumps(ROW).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def measure(node, candidate: str, baseline: str, tmp_path: Path, seconds: float = 8) -> tuple[Path, Path]:
    """The candidate's and the baseline's Services under the same load at the same time; their result files."""
    results = run_paired_benchmark_step(service_url(node, candidate), service_url(node, baseline),
                                        protocol="v2-rest", model="digits", qps=150, concurrency=4, duration=seconds,
                                        warmup=1.0, sample="digits")
    files = []
    for side, result in zip(("candidate", "baseline"), results, strict=True):
        files.append(tmp_path / f"{side}.json")
        files[-1].write_text(json.dumps(result))
    return files[0], files[1]


def test_a_rollout_promotes_then_one_rolls_back_with_real_pods(node, image, versions, tmp_path, say):
    platform, model = cluster(node), ModelRef("digits", NAMESPACE)
    timings = {}
    started = time.monotonic()
    first = platform.deploy_spec(spec(image, versions["first"]))
    timings["v1 deployed, pod Ready"] = time.monotonic() - started
    platform.promote(model)
    stable = service_url(node, "digits")
    assert infer(stable) == 200
    started = time.monotonic()
    second = platform.deploy_spec(spec(image, versions["second"]))
    timings["v2 deployed beside v1, pod Ready"] = time.monotonic() - started
    assert [pod["status"]["phase"] for pod in pods(node, second.version)] == ["Running"]
    started = time.monotonic()
    candidate_file, baseline_file = measure(node, f"digits-{second.version}", "digits", tmp_path)
    # two pods on a 2-core node beside the test: the SLO and the side-by-side comparison of p50 and p90 with wide
    # margins; the tail of 1,200 requests a side is too noisy to call here (one run: p99 ratio 0.893 [0.516,
    # 1.792]). The gate's statistics are measured in tests/bench; this is the promote path on real pods.
    policy = load_policy(overrides={"slo.max_p99_ms": 250, "relative.max_p50_increase_pct": 60,
                                    "relative.max_p90_increase_pct": 60, "relative.max_p99_increase_pct": None,
                                    "relative.max_tail_increase_pct": None})
    verdict = decide(candidate_file, baseline_file, policy)
    timings["side-by-side benchmark and gate"] = time.monotonic() - started
    assert verdict.decision == "PROMOTE", verdict.summary()
    started = time.monotonic()
    platform.promote(model)
    timings["promote (the stable Service switched)"] = time.monotonic() - started
    selector = node.kubectl("-n", NAMESPACE, "get", "service", "digits", "-o", "jsonpath={.spec.selector}").stdout
    assert json.loads(selector)["meshserve.io/version"] == second.version
    assert infer(stable) == 200
    third = platform.deploy_spec(replace(spec(image, versions["first"]), version="v1-again"), allow_same_model=True)
    candidate_file, baseline_file = measure(node, "digits-v1-again", "digits", tmp_path, seconds=3)
    verdict = decide(candidate_file, baseline_file, load_policy(overrides={"slo.max_p99_ms": 0.001}))
    assert verdict.decision == "ROLLBACK", verdict.summary()
    started = time.monotonic()
    assert platform.rollback(model).version == second.version
    timings["rollback"] = time.monotonic() - started
    assert infer(stable) == 200
    assert gone(node, first.version), "the promoted-away version's pods are still there"
    assert gone(node, third.version), "the rolled-back candidate's pods are still there"
    timings["the old and the rolled-back versions' pods gone (from the rollback)"] = time.monotonic() - started
    for step, seconds in timings.items():
        say(f"{step}: {seconds:.1f} s")


def test_a_crash_looping_candidate_names_its_pod_and_the_primary_keeps_serving(node, image, versions, steps_image,
                                                                                 say):
    platform = cluster(node, ready_timeout_s=15)
    serving_primary(platform, image, versions)
    stable, answers, stop = service_url(node, "digits"), [], threading.Event()

    def background() -> None:
        while not stop.is_set():
            answers.append(infer(stable))
            time.sleep(0.05)

    loader = threading.Thread(target=background, daemon=True)
    loader.start()
    started = time.monotonic()
    try:
        with pytest.raises(PlatformError) as failed:
            platform.deploy_spec(spec(image, versions["broken"]))
    finally:
        stop.set()
        loader.join(10)
    message = str(failed.value)
    say(f"crash-looping candidate refused after {time.monotonic() - started:.1f} s: {message}")
    broken = version_of(versions["broken"])
    assert f"Deployment digits-{broken} was not ready after 15 s; pod digits-{broken}-" in message, message
    # the kubelet's state of it (CrashLoopBackOff while backing off, Error just after a crash) and its last words
    assert "last exit 2: model server: error: model: corrupted (sha256 mismatch) file model.joblib" in message
    assert gone(node, broken)  # nothing of the candidate is left
    say(f"background load on the primary during the failed deploy: {len(answers)} requests, "
        f"{sum(code != 200 for code in answers)} failed")
    assert len(answers) > 100 and all(code == 200 for code in answers)


def test_an_unschedulable_candidate_names_the_scheduler_s_reason(node, image, versions, say):
    missing_claim = replace(spec(image, versions["second"].replace("pvc://models/", "pvc://no-such-claim/")),
                            version="v-nowhere")
    platform = cluster(node, ready_timeout_s=3)
    serving_primary(platform, image, versions)
    with pytest.raises(PlatformError) as failed:
        platform.deploy_spec(missing_claim)
    say(f"a candidate on a claim that does not exist: {failed.value}")
    assert "pod digits-v-nowhere-" in str(failed.value)
    assert 'not scheduled (Unschedulable): 0/1 nodes are available: 1 persistentvolumeclaim "no-such-claim" not ' \
        f'found; fix the cause the pods name (`kubectl -n {NAMESPACE} describe pods -l meshserve.io/version=' \
        'v-nowhere`)' in str(failed.value)
    assert gone(node, "v-nowhere")


def test_the_workflow_s_train_upload_and_deploy_run_as_jobs_with_the_rbac_service_account(node, image, steps_image,
                                                                                         tmp_path, say):
    if "10.244.0.1" not in node.kubeconfig.read_text():
        pytest.skip("the node's API server listens on loopback only (started without KN_INCLUSTER=1): pods cannot "
                    "reach it")
    steps, seconds_to_import = steps_image.result(timeout=3600)
    say(f"steps image built and in the node's containerd in {seconds_to_import:.1f} s (in the background)")
    node.kubectl("apply", "-n", NAMESPACE, "-k", str(REPO_ROOT / "manifests" / "rbac"))
    workflow = yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())
    arguments = {"name": "digits-jobs", "storage-prefix": "pvc://models/jobs", "models-claim": "models",
                 "platform": "kubernetes", "namespace": NAMESPACE, "runtime": "deployment", "router": "none",
                 "runtime-options": json.dumps({"image": image, "image_pull_policy": "Never"})}
    seconds: dict[str, float] = {}
    executor = JobExecutor(node, NAMESPACE, {STEP_IMAGE: steps}, "train-to-serve-jobs", seconds=seconds)
    run = run_dag(workflow, arguments, tmp_path, {}, executor, only={"train", "upload", "deploy"})
    assert [run.phases[step] for step in ("train", "upload", "deploy")] == ["Succeeded"] * 3, run.logs
    for step, outputs in run.parameters.items():
        say(f"Job {step} ({seconds[step]:.1f} s): " + ", ".join(f"{k}={v}" for k, v in sorted(outputs.items())))
    trained, uploaded, deployed = run.parameters["train"], run.parameters["upload"], run.parameters["deploy"]
    assert float(trained["accuracy"]) > 0.9
    version = deployed["version"]
    assert version == f"v{trained['model-digest'][:12]}" and uploaded["storage-uri"] == f"pvc://models/jobs/{version}"
    assert (WORK / "pvc" / NAMESPACE / "models" / "jobs" / version / "model.joblib").is_file()
    job_pod = json.loads(node.kubectl("-n", NAMESPACE, "get", "pods", "-l", "job-name=train-to-serve-jobs-deploy",
                                      "-o", "json").stdout)["items"][0]
    assert job_pod["spec"]["serviceAccountName"] == "meshserve-steps"
    # the API server's own record: the Deployment was applied by the ServiceAccount, through its in-cluster token
    applied_by = {entry["user"]["username"] for entry in map(json.loads, (WORK / "cluster" / "audit.log").open())
                  if (entry.get("objectRef") or {}).get("name") == f"digits-jobs-{version}"
                  and entry["objectRef"]["resource"] == "deployments" and entry["verb"] == "patch"}
    assert applied_by == {f"system:serviceaccount:{NAMESPACE}:meshserve-steps"}, applied_by
    [served] = pods(node, version, model="digits-jobs")
    assert served["status"]["phase"] == "Running" and served["spec"]["containers"][0]["image"] == image
    assert infer(service_url(node, f"digits-jobs-{version}"), model="digits-jobs") == 200
    node.kubectl("-n", NAMESPACE, "delete", "deployment,service", "-l", "app.kubernetes.io/name=digits-jobs",
                 "--wait=false", check=False)


def test_the_primary_s_pod_killed_mid_analysis_is_set_aside_and_named_not_promoted_on(node, image, versions, say):
    platform, model = cluster(node), ModelRef("digits", NAMESPACE)
    primary = serving_primary(platform, image, versions)
    [killed] = [pod["metadata"]["name"] for pod in pods(node, primary)]
    platform.deploy_spec(replace(spec(image, versions["second"]), version="v-same"), allow_same_model=True)
    candidate_url, baseline_url = service_url(node, "digits-v-same"), service_url(node, "digits")

    def measure(seconds: float, warmup: float) -> tuple[dict, dict]:
        return run_paired_benchmark_step(candidate_url, baseline_url, protocol="v2-rest", model="digits", qps=150,
                                         concurrency=4, duration=seconds, warmup=warmup, sample="digits")

    first_look = threading.Event()

    def kill_the_primary_s_pod() -> None:  # as `kubectl delete pod` would, half a second into the second window
        first_look.wait(60)
        time.sleep(0.5)
        node.kubectl("-n", NAMESPACE, "delete", "pod", killed, "--wait=false")

    threading.Thread(target=kill_the_primary_s_pod, daemon=True).start()
    # an equal model on a busy 2-core node: allowances wide enough that only the outage could decide
    policy = load_policy(overrides={"slo.max_p99_ms": 250, "relative.max_p50_increase_pct": 60,
                                    "relative.max_p90_increase_pct": 60, "relative.max_p99_increase_pct": 100,
                                    "analysis.window_s": 2, "analysis.max_duration_s": 12, "analysis.warmup_s": 0.5})
    analysis = analyze(measure, policy, on_look=lambda look: first_look.set())
    verdict = analysis.to_dict()
    set_aside = next(check for check in analysis.verdict.checks if check.name == "baseline_windows")
    say(f"the primary's pod killed in window 2: {analysis.verdict.decision} ({analysis.stopped}); {set_aside.reason}")
    assert set_aside.value >= 1 and "window 2 set aside: the baseline answered" in set_aside.reason
    assert "connection_refused" in set_aside.reason or "connection_reset" in set_aside.reason, set_aside.reason
    assert not [check for check in analysis.verdict.checks if check.status == "fail"], analysis.verdict.summary()
    # the outage is in no evidence: the windows kept are clean on both sides, and paired
    assert verdict["evidence"]["baseline"]["windows"] == verdict["evidence"]["candidate"]["windows"] == \
        policy.analysis.planned_looks - set_aside.value
    assert analysis.baseline is not None and analysis.baseline.error_count == 0
    replaced = pods(node, primary)
    assert [pod["metadata"]["name"] for pod in replaced] != [killed] and len(replaced) == 1
    assert platform.rollback(model).version == primary  # the replacement serves: the candidate goes, as inconclusive
