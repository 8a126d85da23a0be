"""The gate on the local platform: 20 A/A rollouts, and the same 20 with a +20% regression.

A/A: the primary is the digits SVM trained with seed 0; each candidate is the same training
configuration with another seed (1..20), as fast as the primary. Each rollout deploys the candidate
as a canary, measures it and the primary side by side through the router the way `make run` does
(pinned by the track header, 500 qps for 10 s each, digits sample rows), judges, and rolls back.
+20%: the same measured pairs, the candidate's latencies multiplied by 1.2 in time order (the noise
stays what was measured; every quantile is 20% slower). Each pair is judged under the gate's default
policy with each bootstrap (`iid`: requests resampled independently; `block`: time windows resampled,
both sides together) and the counts of PROMOTE / INCONCLUSIVE / ROLLBACK printed.

Run: `.venv/bin/python tests/bench/bench_gate_aa.py [--rollouts 20] [--keep DIR]`; with `--judge DIR`
it re-judges pairs a previous run kept, without measuring. Loads target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.gate.decision import judge  # noqa: E402
from components.gate.evidence import Evidence  # noqa: E402
from components.gate.policy import GatePolicy, policy_from_dict  # noqa: E402
from components.platform.protocol import ModelRef  # noqa: E402

QPS, SECONDS = 500.0, 10.0  # what train-to-serve's benchmark step sends


def measure_pairs(work: Path, rollouts: int) -> list[tuple[dict, dict]]:
    """Deploy, measure side by side and roll back `rollouts` candidates; return (candidate, primary) results."""
    from components.platform.local import LocalPlatform
    from components.steps.benchmark.core import run_paired_benchmark_step
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    def publish(seed: int) -> str:
        model = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=seed), work / f"m{seed}")
        return upload_model(model.model_dir, "pvc://models/digits").storage_uri

    platform = LocalPlatform(work / "state")
    platform.deploy_version("digits", publish(0))
    platform.promote(ModelRef("digits"))
    pairs = []
    try:
        router = platform.status()["router"]["http"]
        for seed in range(1, rollouts + 1):
            platform.deploy_version("digits", publish(seed), canary_percent=10)
            pair = run_paired_benchmark_step(router, router, candidate_headers=["x-meshserve-track: canary"],
                                             baseline_headers=["x-meshserve-track: primary"], protocol="kserve-v1",
                                             model="digits", qps=QPS, duration=SECONDS, warmup=1.0, sample="digits")
            platform.rollback(ModelRef("digits"))
            pairs.append(pair)
            print(f"  rollout {seed:2d}: p99 candidate {pair[0]['latency_ms']['p99']:6.3f} ms, "
                  f"primary {pair[1]['latency_ms']['p99']:6.3f} ms", flush=True)
    finally:
        platform.down()
    return pairs


def decisions(pairs: list[tuple[dict, dict]], bootstrap: str, factor: float) -> Counter:
    """The gate's decisions over the pairs, with the candidate's latencies multiplied by `factor`."""
    policy = policy_from_dict({"statistics": {"time_windows": 0}}) if bootstrap == "iid" else GatePolicy()
    counted = Counter()
    for candidate, baseline in pairs:
        verdict = judge(evidence(candidate, "candidate", factor), evidence(baseline, "baseline"), policy)
        counted[verdict.decision] += 1
    return counted


def evidence(document: dict, role: str, factor: float = 1.0) -> Evidence:
    """The gate's view of a result: its raw samples (times `factor`), in order and sorted."""
    in_order = np.asarray(document["samples_us"], dtype=np.float64) / 1000.0 * factor
    return Evidence(role, document, np.sort(in_order), in_order)


def main() -> None:
    """Measure (or load) the pairs, then print the decision counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--keep", default="", help="directory to keep the measured pairs in")
    parser.add_argument("--judge", default="", help="re-judge the pairs kept in this directory")
    args = parser.parse_args()
    if args.judge:
        pairs = [tuple(json.loads(p.read_text())) for p in sorted(Path(args.judge).glob("pair-*.json"))]
    else:
        with tempfile.TemporaryDirectory() as work:
            os.environ["MESHSERVE_STATE_DIR"] = str(Path(work) / "state")
            print(f"measuring {args.rollouts} A/A rollouts on the local platform ({QPS:.0f} qps, {SECONDS:.0f} s)")
            pairs = measure_pairs(Path(work), args.rollouts)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for index, pair in enumerate(pairs):
                (Path(args.keep) / f"pair-{index:02d}.json").write_text(json.dumps(pair))
    ratios = np.array([c["latency_ms"]["p99"] / b["latency_ms"]["p99"] for c, b in pairs])
    print(f"\nA/A p99 ratios (candidate / primary): median {np.median(ratios):.3f}, "
          f"min {ratios.min():.3f}, max {ratios.max():.3f}")
    print(f"\n{'bootstrap':10} {'case':14} {'PROMOTE':>8} {'INCONCLUSIVE':>13} {'ROLLBACK':>9}   (of {len(pairs)})")
    for bootstrap in ("iid", "block"):
        for case, factor in (("A/A", 1.0), ("+20% slower", 1.2)):
            counted = decisions(pairs, bootstrap, factor)
            print(f"{bootstrap:10} {case:14} {counted['PROMOTE']:8d} {counted['INCONCLUSIVE']:13d} "
                  f"{counted['ROLLBACK']:9d}")


if __name__ == "__main__":
    main()
