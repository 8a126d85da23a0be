"""Containers for the image tests and the image benchmark: podman with the project's engine settings, one-shot
runs, model-server containers and their readiness, and what a container wrote where software lives."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.compile import REPO_ROOT
from tests.support.servers import free_port

ENGINE_CONF = REPO_ROOT / "runtime_images" / "podman" / "containers.conf"


def engine_env() -> dict[str, str]:
    """This process's environment with the project's engine settings, unless CONTAINERS_CONF says otherwise."""
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(ENGINE_CONF))}


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """One podman command with the project's engine settings (unless CONTAINERS_CONF says otherwise)."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=engine_env())
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... exited {done.returncode}: {done.stderr[-3000:]}")
    return done


def run_in(image: str, *args: str, entrypoint: str | None = None, volumes: tuple[str, ...] = (),
           env: tuple[str, ...] = (), network: str = "none", name: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    """`podman run` to completion; removed afterwards unless named (the caller diffs, then removes it)."""
    flags = ["--network", network, *[flag for volume in volumes for flag in ("-v", volume)],
             *[flag for variable in env for flag in ("-e", variable)]]
    flags += ["--name", name] if name else ["--rm"]
    flags += ["--entrypoint", entrypoint] if entrypoint else []
    return podman("run", *flags, image, *args, timeout=timeout, check=False)


def installed_at_start(container: str) -> list[str]:
    """What a container changed where software lives (/opt, /usr) and any bytecode it wrote anywhere: an image
    that installs or compiles at start shows it here. (Keras writing ~/.keras/keras.json is configuration.)"""
    changed = [line.split(maxsplit=1) for line in podman("diff", container).stdout.split("\n") if line.strip()]
    return [f"{kind} {path}" for kind, path in changed
            if path.startswith(("/opt/", "/usr/")) or path.endswith(".pyc")]


def shared_dir(path: Path) -> Path:
    """A host directory uid 1000 can write in (a container's volume)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 1000, 0)
    return path


@contextmanager
def model_server(image: str, model_dir: Path, model: str, *, publish: bool = True) -> Iterator[dict]:
    """A model-server container serving `model_dir` at /mnt/models (read-only): its ports on 127.0.0.1 when
    published, else no network but its own loopback. Yields name, ports and the seconds from `podman run` to
    ready."""
    name = f"meshserve-test-{model}-{os.getpid()}-{time.monotonic_ns()}"
    http_port, grpc_port = free_port(), free_port()
    network = ["-p", f"127.0.0.1:{http_port}:8080", "-p", f"127.0.0.1:{grpc_port}:8081"] if publish else [
        "--network", "none"]
    started = time.monotonic()
    podman("run", "-d", "--name", name, *network, "-v", f"{model_dir}:/mnt/models:ro", image,
           "/mnt/models", "--name", model, "--host", "0.0.0.0")
    try:
        ready = wait_ready(name, model, http_port if publish else None) - started
        yield {"name": name, "http_port": http_port, "grpc_port": grpc_port, "ready_s": ready}
    finally:
        podman("rm", "-f", "-t", "2", name, check=False)


def wait_ready(container: str, model: str, http_port: int | None, timeout: float = 120) -> float:
    """The moment the model reports ready, asked from the host (published) or inside the container."""
    url = f"/v2/models/{model}/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{url}", timeout=1) as answer:
                    if answer.status == 200:
                        return time.monotonic()
            except OSError:
                pass
        else:
            probe = podman("exec", container, "python", "-c", f"import urllib.request as u; "
                           f"u.urlopen('http://127.0.0.1:8080{url}', timeout=1)", check=False)
            if probe.returncode == 0:
                return time.monotonic()
        state = podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        assert state == "true", f"the model server exited: {podman('logs', container).stderr[-2000:]}"
        time.sleep(0.05)
    raise AssertionError(f"{container} not ready after {timeout} s")


def image_size_mb(image: str) -> float:
    """An image's size as `podman images` counts it, in MB."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) / 1e6


def build_images() -> dict[str, tuple[str, float]]:
    """runtime_images/build.sh: target -> (image name, build seconds)."""
    built = subprocess.run(["sh", str(REPO_ROOT / "runtime_images" / "build.sh")], capture_output=True, text=True,
                           env=engine_env(), timeout=3600)
    assert built.returncode == 0, built.stderr[-3000:]
    images = {}
    for line in built.stdout.split("\n"):
        if line.strip():
            name, seconds = line.split()
            images[name.rsplit("/", 1)[1].split(":")[0]] = (name, float(seconds))
    return images
