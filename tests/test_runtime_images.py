"""The runtime images' install steps, run into a fresh virtualenv (no container engine here), and what they start."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
import yaml

from pipelines.compile import REPO_ROOT
from tests.conftest import shared_path
from tests.support.schemas import kube_object_errors
from tests.support.servers import free_port

IMAGES = REPO_ROOT / "runtime_images"


def test_both_images_build_on_the_install_script_and_run_as_non_root():
    lines = [line.strip() for line in (IMAGES / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    install = "RUN sh runtime_images/install.sh python && rm -rf components pipelines"
    assert lines.index("COPY requirements.lock pyproject.toml README.md ./") < lines.index(install)
    assert lines.index(install) < lines.index("USER 1000") < lines.index("FROM installed AS steps")
    assert "FROM installed AS model-server" in lines
    assert 'ENTRYPOINT ["python", "-m", "components.serving"]' in lines


def test_the_serving_runtime_manifest_is_strictly_valid():
    runtime = yaml.safe_load((REPO_ROOT / "manifests/runtimes/serving-runtime.yaml").read_text())
    assert kube_object_errors(shared_path("schemas"), runtime) == []
    args = runtime["spec"]["containers"][0]["args"]
    assert args[:3] == ["/mnt/models", "--name", "{{.Name}}"] and "0.0.0.0" in args


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory):
    """A fresh virtualenv with exactly what the images install (install.sh, from the lock file)."""
    python = shutil.which("python3.11")
    if python is None:
        pytest.skip("needs python3.11 (the images' Python)")
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    started = time.monotonic()
    installed = subprocess.run(["sh", str(IMAGES / "install.sh"), str(venv / "bin" / "python")], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stderr[-2000:]
    print(f"install.sh into a fresh venv: {time.monotonic() - started:.1f} s")
    return venv


def test_the_steps_entry_point_and_the_model_server_start_from_the_installed_image(image_venv, tmp_path):
    model = tmp_path / "iris"
    trained = subprocess.run([str(image_venv / "bin" / "meshserve"), "train", "--framework", "sklearn", "--dataset",
                              "iris", "--out", str(model)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    http_port, grpc_port = free_port(), free_port()
    server = subprocess.Popen([str(image_venv / "bin" / "python"), "-m", "components.serving", str(model), "--name",
                               "iris", "--http-port", str(http_port), "--grpc-port", str(grpc_port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/iris/ready", timeout=1) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        request = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/models/iris:predict",
                                         data=json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})
                                         .encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read()) == {"predictions": [1, 1]}  # seed 002's request and answer
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
