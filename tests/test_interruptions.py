"""Interrupting a command leaves nothing half-done (issue 13, finding 4): what it started, it stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.storage import upload_model
from pipelines.compile import REPO_ROOT
from tests.support.signals import default_sigint


def model_servers(state: Path) -> list[int]:
    """PIDs of model servers serving from this state directory."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and "components.serving" in cmdline and str(state) in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_an_interrupted_deploy_stops_the_model_server_it_started(signum, code, digits_model, isolated_state):
    state = isolated_state
    env = {**os.environ, "MESHSERVE_STATE_DIR": str(state)}
    uri = upload_model(digits_model, "pvc://models/digits").storage_uri
    deploy = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "deploy", "--platform", "local", "--name",
                               "digits", "--storage-uri", uri], env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE,
                              text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while not model_servers(state) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model_servers(state), "the deploy did not start a model server"
    deploy.send_signal(signum)  # while the server is still loading: before it is recorded or routed
    assert deploy.wait(timeout=60) == code
    assert "interrupted" in deploy.stderr.read()
    deadline = time.monotonic() + 30
    while model_servers(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert model_servers(state) == []
    status = subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "status", "--json"], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert json.loads(status.stdout)["models"] == []


def test_local_down_stops_its_processes_even_with_a_corrupt_state_file(digits_model, isolated_state):
    """Issue 13: a corrupt platform.json is a clear error, and `local down` still stops what it can identify."""
    import shutil

    if shutil.which("nginx") is None:
        pytest.skip("needs nginx: `make test` installs it")
    from components.platform.local import LocalPlatform
    from pipelines.cli import main

    platform = LocalPlatform()
    platform.deploy_version("digits", upload_model(digits_model, "pvc://models/digits").storage_uri)
    router_pid = platform.router.pid()
    assert model_servers(isolated_state) and router_pid
    (isolated_state / "platform.json").write_text("{not json")
    with pytest.raises(Exception, match=r"state: .*platform.json is not a meshserve state file"):
        platform.status()
    assert main(["local", "down"]) == 0
    deadline = time.monotonic() + 30
    while model_servers(isolated_state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert model_servers(isolated_state) == []
    assert LocalPlatform().router.pid() is None  # nginx is gone (a zombie of this test process at most)
    assert not (isolated_state / "platform.json").exists()
    assert list(isolated_state.glob("platform.json.unreadable-*"))


def test_a_router_port_from_the_environment_wins_and_a_clash_is_not_remembered(isolated_state, monkeypatch):
    from components.routing.nginx import NginxRouter
    from tests.support.servers import free_port

    router = NginxRouter(isolated_state)
    kept = router.ports()
    assert router.ports() == kept  # chosen once, kept
    wanted = free_port()
    monkeypatch.setenv("MESHSERVE_ROUTER_HTTP_PORT", str(wanted))
    assert router.ports()["http"] == wanted  # the environment wins over what was kept
    monkeypatch.setenv("MESHSERVE_ROUTER_HTTP_PORT", "70000")
    with pytest.raises(Exception, match="MESHSERVE_ROUTER_HTTP_PORT: '70000' is not a port"):
        router.ports()


def meshserve(*args: str, **popen) -> subprocess.Popen:
    """The CLI in its own process group, as a terminal runs it (Ctrl-C signals the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_sigint, **popen)


def test_ctrl_c_of_a_multi_process_benchmark_is_one_line_and_writes_no_result(tmp_path):
    from tests.support.servers import start_inference_server

    server = start_inference_server()
    result = tmp_path / "result.json"
    try:
        bench = meshserve("bench", f"http://127.0.0.1:{server.http_port}/", "--procs", "2", "-qps", "200", "-t",
                          "30s", "--json", str(result))
        time.sleep(6)  # the load processes are up and sending
        os.killpg(bench.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = bench.communicate(timeout=30)
    finally:
        server.stop()
    assert bench.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"meshserve bench: interrupted; the load was stopped; no result written to {result}")
    assert "Traceback" not in err and not result.exists()


def test_an_interrupted_upload_leaves_no_staging_and_no_version(tmp_path, isolated_state):
    model = tmp_path / "model"
    from components.manifest import ModelManifest, digest_directory, read_manifest, write_manifest
    from components.training import TrainConfig, train_model

    trained = train_model(TrainConfig(framework="sklearn", dataset="iris"), model).model_dir
    for index in range(300):  # 300 x 1 MB: the copy takes long enough to be interrupted mid-way
        (trained / f"weights-{index:03d}.bin").write_bytes(os.urandom(1 << 20))
    manifest = read_manifest(trained)
    write_manifest(trained, ModelManifest(**{**manifest.__dict__, "files": digest_directory(trained)}))
    models = isolated_state / "pvc" / "models" / "iris"
    upload = meshserve("upload", "--model", str(trained), "--to", "pvc://models/iris")
    deadline = time.monotonic() + 60
    while not list((models / ".staging").glob("*/weights-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list((models / ".staging").glob("*/weights-*")), "the upload did not start copying"
    upload.send_signal(signal.SIGTERM)
    _, err = upload.communicate(timeout=60)
    assert upload.returncode == 130 and "meshserve upload: interrupted" in err and "Traceback" not in err
    assert list((models / ".staging").iterdir()) == [] and [p.name for p in models.iterdir()] == [".staging"]


def test_an_interrupted_dataset_fetch_leaves_no_partial_cache(tmp_path, mnist_dir):
    cache = tmp_path / "mnist"
    fetch = meshserve("datasets", "fetch", "mnist", "--cache", str(cache))
    partial = cache.with_name("mnist.partial")
    deadline = time.monotonic() + 120
    while not partial.exists() and fetch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    fetch.send_signal(signal.SIGTERM)
    fetch.communicate(timeout=120)
    assert not partial.exists()
    if fetch.returncode == 130:  # stopped while copying: no cache at all
        assert not cache.exists()
    else:  # it had finished: a complete, verified cache
        from components.datasets.mnist import verify_mnist_dir

        assert fetch.returncode == 0 and verify_mnist_dir(cache) is None
