"""How good are the gate's decisions? A power simulation, then real local servers.

Simulation: latency samples shaped like model servers' (lognormal; bimodal with a 3% slow mode), at
the sample size of a 60 s run at 100 qps (6,000 per side), under the default policy (p50/p90/p99 may
grow 10%, the tail ratio 25%, 95% confidence). Two kinds of regression of size X:
- "scale": every request X% slower (the p99 grows X%);
- "tail": only the tail grows, p99 +X% with the median unchanged (lognormal: a wider sigma;
  bimodal: a slower slow mode). Mann–Whitney alone cannot see this kind.
For each size, the share of trials rolled back, held inconclusive and promoted.

Real servers: the test inference server three times, the candidate with 2 ms added per request and an
identical one, each benchmarked at 500 qps for 12 s (the same 6,000 samples) at the same time as the
baseline; each server shares one CPU with its own client, so both sides see the same conditions.

Run: `.venv/bin/python tests/bench/bench_gate.py [--trials 200] [--only simulation|servers]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.gate.decision import judge  # noqa: E402
from components.gate.evidence import Evidence  # noqa: E402
from components.gate.policy import GatePolicy  # noqa: E402
from components.steps.benchmark.core import run_benchmark_step  # noqa: E402
from components.steps.gate.core import run_gate  # noqa: E402
from tests.support.servers import start_inference_server  # noqa: E402

SAMPLES = 6000  # 60 s at 100 qps
SIZES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50)
Z99 = 2.3263


def lognormal(rng, size: float, kind: str) -> np.ndarray:
    """Median 2 ms, sigma 0.35; a regression of `size` in the p99."""
    sigma = 0.35
    if kind == "tail":
        return rng.lognormal(np.log(2.0), sigma + np.log1p(size) / Z99, SAMPLES)
    return rng.lognormal(np.log(2.0), sigma, SAMPLES) * (1 + size)


def bimodal(rng, size: float, kind: str) -> np.ndarray:
    """97% around 2 ms, 3% in a slow mode around 12 ms (the p99 sits in the slow mode)."""
    slow = rng.random(SAMPLES) < 0.03
    body = rng.lognormal(np.log(2.0), 0.25, SAMPLES)
    tail = rng.lognormal(np.log(12.0), 0.2, SAMPLES)
    if kind == "tail":
        return np.where(slow, tail * (1 + size), body)
    return np.where(slow, tail, body) * (1 + size)


def evidence(role: str, latencies: np.ndarray) -> Evidence:
    """A clean run (no errors, rate achieved) carrying these latencies."""
    document = {"success_ratio": 1.0, "counts": {"by_error": {}}, "achieved_qps": 100.0, "requested_qps": 100.0,
                "target": {"protocol": "kserve-v1", "payload_sha256": "sim", "url": "simulated"},
                "settings": {"mode": "open-loop", "qps": 100.0, "concurrency": 8}, "latency_ms": {},
                "started_at": ""}
    return Evidence(role, document, np.sort(latencies))


def simulate(trials: int) -> None:
    """Print the power curve: regression size → share rolled back / inconclusive / promoted."""
    rng = np.random.default_rng(2026)
    policy = GatePolicy()
    for shape_name, shape in (("lognormal", lognormal), ("bimodal", bimodal)):
        print(f"\n## {shape_name}, {SAMPLES} samples per side, {trials} trials per point")
        print(f"{'p99 change':>10} | {'scale: rollback':>15} {'inconcl.':>8} {'promote':>8} | "
              f"{'tail: rollback':>14} {'inconcl.':>8} {'promote':>8}")
        for size in SIZES:
            cells = []
            for kind in ("scale", "tail"):
                outcomes = Counter(judge(evidence("candidate", shape(rng, size, kind)),
                                         evidence("baseline", shape(rng, 0.0, kind)), policy).decision
                                   for _ in range(trials))
                cells.append(" ".join(f"{outcomes[d] / trials:>{w}.1%}" for d, w in
                                      (("ROLLBACK", 15 if kind == "scale" else 14), ("INCONCLUSIVE", 8),
                                       ("PROMOTE", 8))))
            print(f"{size:>+10.0%} | {cells[0]} | {cells[1]}", flush=True)


def real_servers() -> None:
    """Baseline and candidate servers on 127.0.0.1, benchmarked side by side, then gated."""
    print("\n## real local servers: 500 qps for 12 s, candidate and baseline measured at the same time")
    baseline = start_inference_server()
    os.sched_setaffinity(baseline.process.pid, {0})
    try:
        for label, delay in (("candidate +2 ms", 2.0), ("identical candidate", 0.0)):
            candidate = start_inference_server(delay_ms=delay)
            os.sched_setaffinity(candidate.process.pid, {1})
            try:
                verdict, figures = _measure_and_gate(candidate.http_url, baseline.http_url)
            finally:
                candidate.stop()
            print(f"{label:20} → {verdict.decision:12} {figures}")
            for check in verdict.failed() + verdict.undecided():
                print(f"{'':23}{check.name}: {check.reason}")
    finally:
        baseline.stop()


def _measure_and_gate(candidate_url: str, baseline_url: str):
    load = {"protocol": "kserve-v1", "model": "echo", "payload": '{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
            "qps": 500, "duration": 12.0, "warmup": 1.0}
    results: dict[str, dict] = {}

    def measure(role: str, url: str, cpu: int) -> None:
        os.sched_setaffinity(0, {cpu})  # this thread only: each client shares its CPU with its server
        results[role] = run_benchmark_step(url, **load)

    threads = [threading.Thread(target=measure, args=(role, url, cpu))
               for role, url, cpu in (("candidate", candidate_url, 1), ("baseline", baseline_url, 0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with tempfile.TemporaryDirectory() as scratch:
        paths = {}
        for role, document in results.items():
            paths[role] = Path(scratch) / f"{role}.json"
            paths[role].write_text(json.dumps(document))
        outcome = run_gate(paths["candidate"], paths["baseline"], GatePolicy())
    c, b = results["candidate"]["latency_ms"], results["baseline"]["latency_ms"]
    figures = f"p50 {c['p50']:.3f} vs {b['p50']:.3f} ms, p99 {c['p99']:.3f} vs {b['p99']:.3f} ms"
    return outcome.verdict, figures


def main() -> None:
    """Simulation, then real servers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--only", choices=["simulation", "servers"])
    args = parser.parse_args()
    if args.only != "servers":
        simulate(args.trials)
    if args.only != "simulation":
        real_servers()


if __name__ == "__main__":
    main()
