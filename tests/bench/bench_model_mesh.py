"""Seed 000 on the local model mesh: tf-mnist's latency through the router with `service` and `model-aware` routing.

The seed deploys sklearn-mnist and tf-mnist on ModelMesh and loads tf-mnist through the ASM gateway with
`fortio load -jitter=False -H 'model: tf-mnist' -c 1 -qps 100 -t 60s -payload '<v2 REST, 784 values>'`,
first with the modelmesh-serving Service (any runtime takes the request, and one without the model
forwards it), then with dynamic subsets (the gateway sends it to a runtime holding the model). Its claim:
some requests are slower through internal forwarding; with model-aware routing all fall within a small
range.

Here: both models trained on MNIST (an SVM and a Keras MLP), published, deployed on a local mesh of 2
runtimes (one model each, by the placement rule), loaded by the project's load generator the seed's way:
1 connection, 100 qps, `--seconds` (60), the seed's payload (read from ../shared/seeds when there, else
an MNIST test image in the same form) with header `model: tf-mnist`. Printed per routing: p50, p90,
p99, max, spread (p99 - p50) and a latency histogram; then the hop itself: the same load sent straight
to the holder's listener and to the other runtime's forwarding listener (`--hop-seconds`, 20).

Run: `.venv/bin/python tests/bench/bench_model_mesh.py [--seconds 60] [--hop-seconds 20]` (`make bench` runs it).
Loads are bounded in count and time and target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SEEDS = REPO.parent / "shared" / "seeds"
CLAIM = {"service": "the latency of some inference requests increases (rerouted inside the mesh)",
         "model-aware": "the latency of all inference requests falls within a small range"}
BINS_MS = (1, 2, 3, 4, 6, 10)


def seed_payload(mnist_dir: Path) -> tuple[str, str]:
    """The seed's request body and where it came from."""
    seed = next(iter(sorted(SEEDS.glob("000_*.txt"))), None)
    if seed is not None:
        found = re.search(r"-payload '(\{.*?\})' ", seed.read_text())
        if found:
            return found.group(1), f"seed 000's payload ({seed.name})"
    from components.datasets.idx import read_idx

    image = read_idx(mnist_dir / "t10k-images.idx3-ubyte")[0].reshape(-1) / 255.0
    body = {"inputs": [{"name": "inputs", "shape": [1, 784], "datatype": "FP32",
                        "contents": {"fp32_contents": [round(float(v), 8) for v in image]}}]}
    return json.dumps(body), "an MNIST test image in the seed's form (../shared/seeds is absent)"


def publish_models(work: Path) -> dict[str, str]:
    """sklearn-mnist (SVM) and tf-mnist (MLP), trained on MNIST and published to a local PVC."""
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    data = mnist(work)
    uris = {}
    for name, framework in (("sklearn-mnist", "sklearn"), ("tf-mnist", "tensorflow")):
        trained = train_model(TrainConfig(framework=framework, dataset="mnist", seed=0, epochs=2, train_limit=10000,
                                          test_limit=2000, data_uri=str(data)), work / framework)
        print(f"trained {name}: accuracy {trained.evaluation.accuracy:.3f}")
        uris[name] = upload_model(trained.model_dir, f"pvc://my-models-pvc/{name}").storage_uri
    return uris


def mnist(work: Path) -> Path:
    from components.datasets.mnist import fetch_mnist

    return fetch_mnist(Path.home() / ".cache" / "meshserve-test" / "mnist")


def load(url: str, body: str, seconds: float) -> dict:
    """The seed's load: one connection, 100 qps, the body, header `model: tf-mnist`."""
    from components.steps.benchmark.core import run_benchmark_step

    return run_benchmark_step(url, protocol="v2-rest", model="tf-mnist", qps=100, duration=seconds, warmup=2.0,
                              concurrency=1, headers=["model: tf-mnist"], payload=body, keep_samples=True)


def row(label: str, result: dict) -> str:
    """p50 p90 p99 max spread success, in ms."""
    latency = result["latency_ms"]
    return (f"{label:34} {latency['p50']:7.2f} {latency['p90']:7.2f} {latency['p99']:7.2f} {latency['max']:8.2f} "
            f"{latency['p99'] - latency['p50']:8.2f} {result['success_ratio']:8.2%} {result['achieved_qps']:6.1f}")


def histogram(label: str, result: dict) -> str:
    """The share of requests per latency bin."""
    samples = [us / 1000 for us in result["samples_us"]]
    edges = (0,) + BINS_MS + (float("inf"),)
    shares = [sum(low <= s < high for s in samples) / max(1, len(samples))
              for low, high in zip(edges, edges[1:], strict=False)]
    return f"{label:14} " + " ".join(f"{share:8.1%}" for share in shares)


def run_routing(root: Path, uris: dict[str, str], routing: str, body: str, seconds: float) -> tuple[dict, object]:
    """Deploy both models with `routing`, load tf-mnist through the router; the result and the status."""
    from components.platform.local import LocalPlatform
    from components.platform.protocol import ModelRef

    platform = LocalPlatform(root)
    for name in ("sklearn-mnist", "tf-mnist"):
        platform.deploy_version(name, uris[name], runtime="modelmesh", runtime_options={"routing": routing})
        platform.promote(ModelRef(name))
    status = platform.status()
    return load(status.gateway["http"], body, seconds), status


def hop(status, body: str, seconds: float) -> tuple[dict, dict]:
    """The same load straight to tf-mnist's holder listener, and to the other runtime's forwarding one."""
    version = next(v for v in status.model("tf-mnist").versions if v.track == "primary")
    listener = {instance.role: f"http://{instance.http}" for instance in version.instances}
    return load(listener["holds"], body, seconds), load(listener["forwards"], body, seconds)


def main() -> None:
    """Parse the flags; run both routings and the hop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hop-seconds", type=float, default=20.0)
    args = parser.parse_args()
    from components.platform.local import LocalPlatform

    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        os.environ["MESHSERVE_STATE_DIR"] = str(work_dir / "state")
        os.environ["MESHSERVE_PVC_ROOT"] = str(work_dir / "pvc")
        body, source = seed_payload(mnist(work_dir))
        uris = publish_models(work_dir)
        root = work_dir / "state"
        results, hops = {}, None
        try:
            for routing in ("service", "model-aware"):
                results[routing], status = run_routing(root, uris, routing, body, args.seconds)
                print(f"\n{routing}: placement")
                for runtime in status.mesh_runtimes:
                    print(f"  {runtime.label}  holds {', '.join(runtime.holds) or 'nothing'}"
                          + (f"  forwards {', '.join(runtime.forwards)}" if runtime.forwards else ""))
                if routing == "service":
                    hops = hop(status, body, args.hop_seconds)
                LocalPlatform(root).down()
        finally:
            LocalPlatform(root).down()
        print(f"\n## seed 000: tf-mnist through the router, 1 connection, 100 qps, {args.seconds:.0f} s, {source}, "
              f"{os.cpu_count()} cores shared by client, router and 2 runtimes (ms)")
        print(f"{'':34} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} {'p99-p50':>8} {'success':>8} {'qps':>6}")
        for routing, result in results.items():
            print(row(f"{routing} routing", result))
        print("\nthe seed's claim:")
        for routing, claim in CLAIM.items():
            print(f"  {routing}: {claim}")
        edges = ("<1",) + tuple(f"<{edge}" for edge in BINS_MS[1:]) + (f">={BINS_MS[-1]}",)
        print(f"\nshare of requests by latency (ms)\n{'':14} " + " ".join(f"{edge:>8}" for edge in edges))
        for routing, result in results.items():
            print(histogram(routing, result))
        if hops:
            print(f"\nthe hop, {args.hop_seconds:.0f} s each, the same load without the router:")
            print(row("straight to the holder", hops[0]))
            print(row("through the other runtime", hops[1]))


if __name__ == "__main__":
    main()
