"""The local platform against the seeds' figures.

1. Seed 002 (KServe on ASM): sklearn-iris, KServe v1 REST through the gateway with a Host header,
   500 qps for 60 s: p50 1.378, p90 1.588, p95 1.746, p99 2.99, max 18.873 ms, 100% success. Here:
   the same shape against the local runtime through the local router, printed beside it.
2. Seed 001 (OpenVINO on OpenShift Service Mesh): gRPC connections are sticky, so L4 balancing pins
   a client to one replica while L7 spreads its requests. Here: one version of a CPU-bound model
   (a digits SVM) served by two replicas, each pinned to its own CPU, behind the router; one long-lived
   gRPC channel with 8 requests in flight, through the L4 (stream) listener and the L7 (grpc_pass)
   listener, alternating, `--trials` times each; the per-replica split from each replica's /metrics and
   the throughput ratio per trial, for a cheap model (SVM) and a costly one (random forest).

Run: `.venv/bin/python tests/bench/bench_local_platform.py [--seconds 60] [--trials 3]` (needs nginx with its
stream module: `make run` installs it). Loads are bounded and target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.platform.local import LocalPlatform  # noqa: E402
from components.platform.protocol import ModelRef  # noqa: E402
from components.steps.benchmark.core import run_benchmark_step  # noqa: E402
from components.storage import upload_model  # noqa: E402
from components.training import TrainConfig, train_model  # noqa: E402

SEED_002 = {"p50": 1.378, "p90": 1.588, "p95": 1.746, "p99": 2.99, "max": 18.873, "success": 1.0}


def publish(root: Path, dataset: str, seed: int, algorithm: str = "") -> str:
    """Train and publish a version; return its storageUri."""
    model = train_model(TrainConfig(framework="sklearn", dataset=dataset, seed=seed, algorithm=algorithm),
                        root / f"{dataset}-{seed}").model_dir
    return upload_model(model, f"pvc://models/{dataset}").storage_uri


def seed_002(root: Path, seconds: float) -> None:
    """sklearn-iris at 500 qps through the router, beside the seed's figures."""
    platform = LocalPlatform(root)
    platform.deploy_version("sklearn-iris", publish(root, "iris", 0))
    platform.promote(ModelRef("sklearn-iris"))
    status = platform.status()
    router = status.gateway["http"]
    server_pid = status.model("sklearn-iris").versions[0].instances[0].pid
    cpu_before = cpu_seconds(server_pid)
    result = run_benchmark_step(router, protocol="kserve-v1", model="sklearn-iris", qps=500, duration=seconds,
                                warmup=2.0, headers=["Host: sklearn-iris.kserve-test.example.com"],
                                payload='{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}',
                                keep_samples=False)
    server_cpu = cpu_seconds(server_pid) - cpu_before
    latency = result["latency_ms"]
    print(f"\n## seed 002 shape: sklearn-iris, KServe v1 REST via the router, 500 qps, {seconds:.0f} s")
    print(f"{'':22} {'p50':>7} {'p90':>7} {'p95':>7} {'p99':>7} {'max':>8} {'success':>8} {'qps':>7}")
    print(f"{'seed (ASM + Knative)':22} " + " ".join(f"{SEED_002[k]:7.3f}" for k in ("p50", "p90", "p95", "p99"))
          + f" {SEED_002['max']:8.3f} {SEED_002['success']:8.2%} {500.0:7.1f}")
    print(f"{'meshserve local':22} " + " ".join(f"{latency[k]:7.3f}" for k in ("p50", "p90", "p95", "p99"))
          + f" {latency['max']:8.3f} {result['success_ratio']:8.2%} {result['achieved_qps']:7.1f}")
    sent = result["sent"]
    print(f"model server: {server_cpu / sent * 1e3:.2f} ms of CPU per request, "
          f"{server_cpu / (seconds + 2.0):.0%} of one core over the run (one Python process, one event loop)")
    platform.down()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def predictions_served(http: str) -> float:
    """The runtime's predict counter from its /metrics."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(r"^request_predict_seconds_count\{[^}]*\} ([0-9.e+]+)$", text, re.M))


def seed_001(root: Path, seconds: float, trials: int, algorithm: str) -> None:
    """One gRPC channel, 8 in flight, to a version with two replicas, through L4 and L7: split and throughput."""
    platform = LocalPlatform(root)
    platform.deploy_version("digits", publish(root, "digits", 0, algorithm), replicas=2)
    platform.promote(ModelRef("digits"))
    status = platform.status()
    replicas = status.model("digits").versions[0].instances
    for cpu, replica in enumerate(replicas):
        os.sched_setaffinity(replica.pid, {cpu})  # one CPU per replica, as one replica per node would have
    print(f"\n## seed 001 claim: digits {algorithm}, 1 version, 2 replicas, one gRPC channel, 8 in flight, "
          f"{seconds:.0f} s per run")
    print(f"{'trial':5} {'listener':10} {'qps':>8} {'replica A':>10} {'replica B':>10} {'p50 ms':>8}")
    ratios = []
    for trial in range(1, trials + 1):
        rates = {}
        for label, address in (("L4 stream", status.gateway["l4"]), ("L7 grpc", status.gateway["grpc"])):
            before = [predictions_served(replica.http) for replica in replicas]
            result = run_benchmark_step(address, protocol="v2-grpc", model="digits", sample="digits", concurrency=8,
                                        duration=seconds, grpc_channels=1, keep_samples=False)
            served = [predictions_served(replica.http) - b for replica, b in zip(replicas, before, strict=True)]
            total = sum(served) or 1
            rates[label] = result["achieved_qps"]
            print(f"{trial:5} {label:10} {result['achieved_qps']:8.1f} {served[0] / total:10.1%} "
                  f"{served[1] / total:10.1%} {result['latency_ms']['p50']:8.3f}")
        ratios.append(rates["L7 grpc"] / rates["L4 stream"])
    print("L7 / L4 throughput per trial: " + ", ".join(f"{ratio:.2f}x" for ratio in ratios))
    platform.down()


def main() -> None:
    """Both comparisons in one run, each in its own state directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="seed 002 duration (seed 001: a third)")
    parser.add_argument("--trials", type=int, default=3, help="seed 001: L4 and L7 runs, alternating")
    parser.add_argument("--algorithms", default="svm,random_forest",
                        help="seed 001: the digits models, cheapest first (the replicas must be the bottleneck)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MESHSERVE_STATE_DIR"] = str(Path(scratch) / "seed-002")
        seed_002(Path(scratch) / "seed-002", args.seconds)
        for algorithm in args.algorithms.split(","):
            root = Path(scratch) / f"seed-001-{algorithm}"
            os.environ["MESHSERVE_STATE_DIR"] = str(root)
            seed_001(root, max(5.0, args.seconds / 3), args.trials, algorithm)


if __name__ == "__main__":
    main()
