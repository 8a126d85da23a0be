"""The runtime images: size, build time, container start to a ready model server, and oss2's CRC64 speed.

1. Builds the three images (runtime_images/build.sh; cached layers make an unchanged build take seconds) and
   prints each one's size and build time.
2. Start to ready: `podman run` of each model-server image serving a model at /mnt/models (iris: scikit-learn,
   and a 3-epoch Keras MLP), until /v2/models/NAME/ready answers 200 from the host, `--trials` times each.
3. oss2's CRC64 over 64 MiB in the steps image and in this venv (the reference, same run), `--trials` times.
4. With `--before REV`: the same for the Dockerfile at git revision REV (its targets `steps` and
   `model-server`), built from a clean checkout of that revision, for a before/after table.

Run: `.venv/bin/python tests/bench/bench_images.py [--trials 5] [--before d078729]` (`make bench` runs it
without --before). Needs podman (`make images`); everything stays on 127.0.0.1 or in `--network none`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.containers import build_images, image_size_mb, model_server, podman, run_in, shared_dir  # noqa: E402

CRC_SPEED = """
import os, time
from oss2.utils import Crc64
data, crc = os.urandom(64 << 20), Crc64()
started = time.perf_counter()
crc.update(data)
print(64 / (time.perf_counter() - started))
"""


def train(steps_image: str, framework: str, workspace: Path) -> Path:
    """A model on iris, trained by the steps image with no network."""
    extra = ["--epochs", "3"] if framework == "tensorflow" else []
    done = run_in(steps_image, "train", "--framework", framework, "--dataset", "iris", "--out", framework, *extra,
                  volumes=(f"{shared_dir(workspace)}:/workspace",))
    assert done.returncode == 0, done.stderr[-2000:]
    return workspace / framework


def ready_seconds(image: str, model_dir: Path, trials: int) -> list[float]:
    """Seconds from `podman run` to a ready model, once per trial."""
    times = []
    for _ in range(trials):
        with model_server(image, model_dir, "iris") as server:
            times.append(server["ready_s"])
    return times


def crc_speeds(image: str, trials: int) -> tuple[list[float], list[float]]:
    """MiB/s of oss2's CRC64 in the image and in this venv, alternating, once per trial each."""
    in_image, here = [], []
    for _ in range(trials):
        done = run_in(image, "-c", CRC_SPEED, entrypoint="python")
        assert done.returncode == 0, done.stderr[-2000:]
        in_image.append(float(done.stdout))
        here.append(float(subprocess.run([sys.executable, "-c", CRC_SPEED], capture_output=True, text=True,
                                         check=True).stdout))
    return in_image, here


def spread(values: list[float], unit: str) -> str:
    """median [min, max] unit."""
    return f"{statistics.median(values):,.2f} {unit} [{min(values):,.2f}, {max(values):,.2f}]"


def build_before(revision: str, checkout: Path) -> dict[str, str]:
    """The images of the Dockerfile at `revision` (targets steps and model-server), tagged before-*."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(checkout), revision],
                   check=True, capture_output=True)
    try:
        images = {}
        for target in ("steps", "model-server"):
            name = f"localhost/meshserve-before-{target}:{revision}"
            podman("build", "--quiet", "-f", str(checkout / "runtime_images" / "Dockerfile"), "--target", target,
                   "-t", name, str(checkout), timeout=3600)
            images[target] = name
        return images
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)],
                       capture_output=True)


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--before", help="a git revision whose Dockerfile to measure beside this one")
    args = parser.parse_args()
    built = build_images()
    print("image                      size      build (this run)")
    for target, (name, seconds) in built.items():
        print(f"{target:26} {image_size_mb(name):7,.0f} MB  {seconds:6.1f} s")
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch)
        models = {framework: train(built["steps"][0], framework, workspace / framework)
                  for framework in ("sklearn", "tensorflow")}
        print(f"\nstart to ready ({args.trials} trials, podman run -> /v2/models/iris/ready from the host)")
        for framework, model_dir in models.items():
            image = built[f"model-server-{framework}"][0]
            print(f"  model-server-{framework:11} {spread(ready_seconds(image, model_dir, args.trials), 's')}")
        in_image, here = crc_speeds(built["steps"][0], args.trials)
        ratio = statistics.median(here) / statistics.median(in_image)
        print(f"\noss2 CRC64 over 64 MiB ({args.trials} trials): steps image {spread(in_image, 'MiB/s')}, "
              f"this venv {spread(here, 'MiB/s')}; venv/image {ratio:.2f}x")
        if args.before:
            before = build_before(args.before, workspace / "before")
            print(f"\nbefore ({args.before}): steps {image_size_mb(before['steps']):,.0f} MB, model-server "
                  f"{image_size_mb(before['model-server']):,.0f} MB")
            print(f"  model-server (sklearn) start to ready "
                  f"{spread(ready_seconds(before['model-server'], models['sklearn'], args.trials), 's')}")
            old_crc, _ = crc_speeds(before["steps"], args.trials)
            print(f"  oss2 CRC64 in the steps image {spread(old_crc, 'MiB/s')}")


if __name__ == "__main__":
    main()
