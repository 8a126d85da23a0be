"""The runtime images, built with podman (runtime_images/build.sh, the base image cached outside the repository)
and run for real: each as uid 1000, with only the network it needs.

- the steps image trains, uploads to a pvc:// path on a mounted volume, and benchmarks the model-server container
  through the server's own network namespace (train and upload run with no network at all);
- each model-server image serves its framework's model from /mnt/models: v1 REST, and v2 REST and gRPC with
  tritonclient; the scikit-learn image refuses a TensorFlow model, naming the runtime that serves it;
- nothing installs or compiles at start (`podman diff`), and no test or dev tool is in any image.

Each image's size, build time and start-to-ready time are printed. Skips, with the reason, where podman cannot
run; `make test` installs Debian's podman, runc and iptables first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pipelines.compile import REPO_ROOT
from tests.support.containers import (
    build_images,
    image_size_mb,
    installed_at_start,
    model_server,
    podman,
    run_in,
    shared_dir,
)

TARGETS = ("model-server-sklearn", "model-server-tensorflow", "steps")
DEV_TOOLS = ("pytest", "hypothesis", "ruff", "mypy", "moto", "ipykernel", "IPython", "jedi", "debugpy", "nbclient",
             "jupyter_client", "kubernetes_validate", "celpy", "tritonclient")
IRIS_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]  # seed 002's request: {"predictions": [1, 1]}

# What an image holds, printed as JSON by its own Python (run with --network none).
INVENTORY = """
import importlib.util, json, os, pathlib, sys, sysconfig
site = pathlib.Path(sysconfig.get_path("purelib"))
found = lambda name: importlib.util.find_spec(name) is not None
crc = None
if found("crcmod"):
    import crcmod
    crc = sys.modules["crcmod.crcmod"]._usingExtension
print(json.dumps({
    "uid": os.getuid(), "cwd": os.getcwd(), "cwd_writable": os.access(os.getcwd(), os.W_OK),
    "home_writable": os.access(os.environ["HOME"], os.W_OK),
    "modules": sorted(name for name in sys.argv[1:] if found(name)),
    "tensorflow_headers": (site / "tensorflow" / "include").exists(),
    "test_suites": sorted(str(p.relative_to(site)) for name in ("numpy", "pandas", "scipy", "sklearn", "matplotlib")
                          for p in (site / name).rglob("tests") if p.is_dir()),
    "uncompiled": [str(p) for root in (site, pathlib.Path("/opt/meshserve-app"))
                   for p in root.rglob("*.py") if "__pycache__" not in p.parts
                   and not (p.parent / "__pycache__" / f"{p.stem}.cpython-311.pyc").exists()][:5],
    "crcmod_extension": crc,
}))
"""

# oss2's CRC64 over 64 MiB, in MiB/s (what every OSS upload checks).
CRC_SPEED = """
import os, time
from oss2.utils import Crc64
data, crc = os.urandom(64 << 20), Crc64()
started = time.perf_counter()
crc.update(data)
print(64 / (time.perf_counter() - started))
"""


@pytest.fixture(scope="module")
def images(say) -> dict[str, str]:
    """The three images, built now (cached layers make an unchanged build take seconds): target -> name."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make test installs Debian's podman, runc and iptables)")
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if info.returncode != 0:
        pytest.skip(f"podman cannot run here: {(info.stderr.strip().splitlines() or ['no reason given'])[-1]}")
    built = build_images()
    for target, (name, seconds) in built.items():
        say(f"{target}: {image_size_mb(name):,.0f} MB, built in {seconds:.1f} s")
    assert sorted(built) == sorted(TARGETS)
    return {target: name for target, (name, _) in built.items()}


def predict_v1(port: int, model: str, rows: list) -> dict:
    """KServe's v1 REST predict from the host."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model}:predict",
                                     data=json.dumps({"instances": rows}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def triton_checks(http_port: int, grpc_port: int, model: str, features: int) -> dict:
    """tritonclient's HTTP (v2 REST) and gRPC (v2) clients: health, metadata and infer, in their own process."""
    done = subprocess.run([sys.executable, "-m", "tests.support.client_checks", "triton", str(http_port),
                           str(grpc_port), model, str(features)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sklearn_model(images, tmp_path_factory) -> Path:
    """An iris model trained by the steps image, with no network, into a host directory."""
    out = shared_dir(tmp_path_factory.mktemp("sklearn"))
    trained = run_in(images["steps"], "train", "--framework", "sklearn", "--dataset", "iris", "--out", "model",
                     volumes=(f"{out}:/workspace",))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return out / "model"


@pytest.fixture(scope="module")
def tensorflow_model(images, tmp_path_factory) -> Path:
    """A small Keras model on iris, trained by the steps image with no network."""
    out = shared_dir(tmp_path_factory.mktemp("tensorflow"))
    trained = run_in(images["steps"], "train", "--framework", "tensorflow", "--dataset", "iris", "--epochs", "3",
                     "--out", "model", volumes=(f"{out}:/workspace",))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return out / "model"


def test_every_image_holds_its_runtime_compiled_and_no_test_or_dev_tool(images):
    wanted = ("tensorflow", "sklearn", "kserve", "kfp", "hera", "oss2", "s3fs", "components", "pipelines", *DEV_TOOLS)
    held = {}
    for target, image in images.items():
        done = run_in(image, "-c", INVENTORY, *wanted, entrypoint="python")
        assert done.returncode == 0, done.stderr[-2000:]
        held[target] = json.loads(done.stdout)
    for target, inventory in held.items():
        assert inventory["uid"] == 1000 and inventory["cwd"] == "/workspace", target
        assert inventory["cwd_writable"] and inventory["home_writable"], target
        assert not set(DEV_TOOLS) & set(inventory["modules"]), (target, inventory["modules"])
        assert not inventory["tensorflow_headers"] and inventory["test_suites"] == [], target
        assert inventory["uncompiled"] == [], (target, inventory["uncompiled"])
    assert held["model-server-sklearn"]["modules"] == ["components", "kserve", "pipelines", "sklearn"]
    assert held["model-server-tensorflow"]["modules"] == ["components", "kserve", "pipelines", "sklearn", "tensorflow"]
    assert set(held["steps"]["modules"]) == {"components", "hera", "kfp", "kserve", "oss2", "pipelines", "s3fs",
                                             "sklearn", "tensorflow"}
    assert held["steps"]["crcmod_extension"] is True


def test_oss2_checks_crc_at_the_speed_of_the_host_venv_in_the_steps_image(images, say):
    in_image = run_in(images["steps"], "-c", CRC_SPEED, entrypoint="python")
    assert in_image.returncode == 0, in_image.stderr[-2000:]
    on_host = subprocess.run([sys.executable, "-c", CRC_SPEED], capture_output=True, text=True, timeout=300,
                             check=True)
    image_speed, host_speed = float(in_image.stdout), float(on_host.stdout)
    say(f"oss2 CRC64: {image_speed:,.0f} MiB/s in the steps image, {host_speed:,.0f} MiB/s in the host venv "
        f"({host_speed / image_speed:.2f}x)")


def test_the_sklearn_server_serves_v1_v2_and_grpc_and_installs_nothing_at_start(images, sklearn_model, say):
    with model_server(images["model-server-sklearn"], sklearn_model, "iris") as server:
        say(f"model-server-sklearn: ready {server['ready_s']:.2f} s after podman run")
        assert predict_v1(server["http_port"], "iris", IRIS_ROWS) == {"predictions": [1, 1]}
        assert set(triton_checks(server["http_port"], server["grpc_port"], "iris", 4)) == {"http", "grpc"}
        assert installed_at_start(server["name"]) == []


def test_the_tensorflow_server_serves_v1_v2_and_grpc(images, tensorflow_model, say):
    with model_server(images["model-server-tensorflow"], tensorflow_model, "iris-tf") as server:
        say(f"model-server-tensorflow: ready {server['ready_s']:.2f} s after podman run")
        predictions = predict_v1(server["http_port"], "iris-tf", IRIS_ROWS)["predictions"]
        assert len(predictions) == 2 and all(label in (0, 1, 2) for label in predictions)
        answers = triton_checks(server["http_port"], server["grpc_port"], "iris-tf", 4)
        assert answers["http"] == answers["grpc"] and len(answers["grpc"]) == 2
        assert installed_at_start(server["name"]) == []


def test_the_sklearn_image_refuses_a_tensorflow_model_naming_the_runtime_that_serves_it(images, tensorflow_model):
    refused = run_in(images["model-server-sklearn"], "/mnt/models", "--name", "iris-tf",
                     volumes=(f"{tensorflow_model}:/mnt/models:ro",))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "model server: error: model: a tensorflow model, and this model server has no tensorflow; serve it with "
        "the meshserve-tensorflow ServingRuntime (image model-server-tensorflow)")


def test_the_steps_image_trains_uploads_to_a_pvc_and_benchmarks_the_model_server(images, tmp_path, say):
    work, claim = shared_dir(tmp_path / "workspace"), shared_dir(tmp_path / "claim")
    name = f"meshserve-test-train-{os.getpid()}"
    trained = run_in(images["steps"], "train", "--framework", "sklearn", "--dataset", "iris", "--out", "model",
                     volumes=(f"{work}:/workspace",), name=name)
    try:
        assert trained.returncode == 0, trained.stderr[-2000:]
        assert installed_at_start(name) == []  # nothing installed or compiled at start
    finally:
        podman("rm", "-f", name, check=False)
    uploaded = run_in(images["steps"], "upload", "--model", "model", "--to", "pvc://models/iris",
                      volumes=(f"{work}:/workspace", f"{claim}:/mnt/pvc/models"), env=("MESHSERVE_PVC_ROOT=/mnt/pvc",))
    assert uploaded.returncode == 0, uploaded.stderr[-2000:]
    version_dir = next((claim / "iris").iterdir())
    with model_server(images["model-server-sklearn"], version_dir, "iris", publish=False) as server:
        bench = run_in(images["steps"], "bench", "http://127.0.0.1:8080", "--protocol", "kserve-v1", "--model",
                       "iris", "--sample", "iris", "-n", "2000", "-c", "4", "--warmup", "1s", "--json",
                       "bench.json", volumes=(f"{work}:/workspace",), network=f"container:{server['name']}")
    assert bench.returncode == 0, bench.stderr[-2000:]
    result = json.loads((work / "bench.json").read_text())
    assert result["counts"]["total"] == 2000 and result["success_ratio"] == 1.0
    latency = result["latency_ms"]
    say(f"in containers: train -> upload pvc://models/iris/{version_dir.name} -> serve -> bench: "
        f"{result['counts']['total']} requests, {result['achieved_qps']:,.0f} qps, p50 {latency['p50']:.2f} ms, "
        f"p99 {latency['p99']:.2f} ms, all 200")
