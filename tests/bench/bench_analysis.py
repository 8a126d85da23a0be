"""The sequential analysis on the local platform: what it decides, how fast, and whether peeking stays valid.

Phases (all by default; `--phases` picks some):
- noise: A/A runs (the primary's own model as a weightless canary beside a fresh copy, 30 s side by side)
  give the instance noise, and their paired time blocks are the pool the simulation draws from;
- aa: real A/A rollouts: the primary's model uploaded under another version name, deployed as a 10%
  canary, `analyze` at the default policy (a fresh copy as the baseline, 500 qps), rolled back;
- slow: real regressions: an SVM with about 6x the support vectors (trained on noisy copies of the
  training set), so every prediction does more kernel work; the ratios it really measured are printed;
- faulty: a candidate failing 1% of its requests: both sides are reached through a second nginx that
  answers 500 to 1% of the candidate's requests, as Istio's fault injection would;
- sim: 1,000+ simulated analyses per case, every look taken, drawn from the noise phase's real latencies:
  each trial draws a measured pair and swaps the two sides' blocks at random (so the true ratio is 1,
  with the pairing in time kept), then applies the case (instance offsets, a +20% candidate, the baseline
  refusing 80% of one window's requests as when its pod is replaced: that window is set aside);
- power: the smallest regression each quantile's check catches with 95% power within the budget;
- speed: the statistics' time for one look at 30,000 samples per side.

Run: `.venv/bin/python tests/bench/bench_analysis.py [--aa 40] [--slow 20] [--faulty 5] [--trials 1000]
[--phases noise,aa,...] [--keep DIR] [--pool DIR/pool.npz]`. Loads go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.analysis.looks import Side  # noqa: E402
from components.analysis.run import analyze  # noqa: E402
from components.gate.policy import GatePolicy, policy_from_dict  # noqa: E402
from components.steps.analyze.core import Load  # noqa: E402

QPS = 500.0
LOAD = Load(protocol="kserve-v1", model="digits", sample="digits", qps=QPS)
PHASES = ("noise", "aa", "slow", "faulty", "sim", "power", "speed")


# --- the local platform -------------------------------------------------------------------------------------

def publish_models(work: Path) -> dict[str, str]:
    """The primary's model (digits SVM, seed 0) and the slow one; returns their model directories."""
    from components.training import TrainConfig, train_model

    primary = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=0), work / "m0").model_dir
    return {"primary": str(primary), "slow": str(slow_model(primary, work / "slow"))}


def slow_model(primary: Path, out: Path, copies: int = 4, noise: float = 1.5) -> Path:
    """The primary's model directory with an SVM trained on the training set plus noisy copies: several times
    the support vectors, so each prediction computes that many more kernel terms."""
    import shutil

    import joblib
    from sklearn.datasets import load_digits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from components.manifest import digest_directory, read_manifest, write_manifest

    shutil.copytree(primary, out)
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(1)
    augmented = np.vstack([x] + [x + rng.normal(0, noise, x.shape) for _ in range(copies)])
    model = make_pipeline(StandardScaler(), SVC()).fit(augmented, np.tile(y, copies + 1))
    joblib.dump(model, out / "model.joblib")
    (out / "meshserve-model.json").unlink()
    manifest = replace(read_manifest(primary), files=digest_directory(out))
    write_manifest(out, manifest)
    print(f"slow model: {model[-1].support_.size} support vectors "
          f"(primary {joblib.load(Path(primary) / 'model.joblib')[-1].support_.size})")
    return out


def rollouts(platform, models: dict[str, str], kind: str, count: int, policy: GatePolicy,
             sides_for=None) -> list[dict]:
    """`count` real rollouts of `kind` (aa, slow, faulty): deploy a 10% canary, analyse, roll back."""
    from components.platform.protocol import ModelRef
    from components.steps.analyze.core import run_analysis, run_analysis_on_platform
    from components.storage import upload_model

    outcomes = []
    model = models["slow" if kind == "slow" else "primary"]
    for index in range(1, count + 1):
        uri = upload_model(Path(model), "pvc://models/digits", version=f"{kind}{index}").storage_uri
        platform.deploy_version("digits", uri, 10, allow_same_model=True)
        started = time.perf_counter()
        try:
            if sides_for is None:
                analysis = run_analysis_on_platform("digits", LOAD, policy)
            else:
                sides = platform.start_baseline("digits")
                try:
                    analysis = run_analysis(sides_for(sides), LOAD, policy)
                finally:
                    platform.stop_baseline("digits")
        finally:
            platform.rollback(ModelRef("digits"))
        outcomes.append(outcome(analysis, time.perf_counter() - started))
        print(f"  {kind} {index:2d}: {describe(outcomes[-1])}", flush=True)
    return outcomes


def outcome(analysis, wall_s: float) -> dict:
    """What one analysis decided, when, and the final look's estimates."""
    final = {check.name: check for check in analysis.verdict.checks}
    ratios = {label: final[f"relative_{label}"].value for label in ("p50", "p90", "p99")
              if f"relative_{label}" in final}
    deciding = [check.name for check in (analysis.verdict.failed() or analysis.verdict.undecided())]
    return {"decision": analysis.verdict.decision, "looks": len(analysis.looks),
            "measured_s": analysis.looks[-1].measured_s if analysis.looks else 0.0, "wall_s": round(wall_s, 1),
            "ratios": ratios, "deciding": deciding}


def describe(result: dict) -> str:
    """One line for a rollout."""
    ratios = " ".join(f"{label} {value:.3f}" for label, value in result["ratios"].items())
    return (f"{result['decision']:12} after {result['measured_s']:5.1f} s ({result['looks']} looks, "
            f"{result['wall_s']:.0f} s wall)  ratios {ratios}  {' '.join(result['deciding'])}")


def fault_front(router_url: str, work: Path, error_percent: float) -> tuple[str, subprocess.Popen]:
    """A second nginx in front of the router: requests with `x-fault: on` are answered 500 at
    `error_percent`; every request is passed on with its headers."""
    import socket

    from components.routing.nginx import nginx_binary

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = work / "fault"
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    upstream = router_url.removeprefix("http://")
    (folder / "nginx.conf").write_text(f"""worker_processes 1; daemon off; pid {folder}/nginx.pid;
error_log {folder}/error.log warn; events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {folder}/tmp; proxy_temp_path {folder}/tmp;
  fastcgi_temp_path {folder}/tmp; uwsgi_temp_path {folder}/tmp; scgi_temp_path {folder}/tmp;
  split_clients "$request_id" $chance {{ {error_percent}% fail; * pass; }}
  map "$http_x_fault:$chance" $abort {{ default 0; "on:fail" 1; }}
  upstream router {{ server {upstream}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ if ($abort) {{ return 500 '{{"error": "injected fault"}}'; }}
      proxy_pass http://router; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    process = subprocess.Popen([nginx_binary(), "-c", str(folder / "nginx.conf"), "-p", str(folder)])
    time.sleep(0.5)
    return f"http://127.0.0.1:{port}", process


# --- the simulation -----------------------------------------------------------------------------------------

def pool_of(pairs: list[tuple[Side, Side]]) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Each measured pair's time blocks (in ms), cut to the same count on both sides."""
    return [(c.blocks[:min(len(c.blocks), len(b.blocks))], b.blocks[:min(len(c.blocks), len(b.blocks))])
            for c, b in pairs]


def save_pool(pool, path: Path) -> None:
    """Keep the pool for later simulations."""
    arrays = {f"{i}_{side}_{j}": block for i, (c, b) in enumerate(pool) for side, blocks in (("c", c), ("b", b))
              for j, block in enumerate(blocks)}
    np.savez_compressed(path, **arrays)


def load_pool(path: Path):
    """A pool `save_pool` kept."""
    data = np.load(path)
    pairs: dict[int, dict[str, dict[int, np.ndarray]]] = {}
    for key in data.files:
        i, side, j = key.split("_")
        pairs.setdefault(int(i), {"c": {}, "b": {}})[side][int(j)] = data[key]
    return [([p["c"][j] for j in sorted(p["c"])], [p["b"][j] for j in sorted(p["b"])]) for _, p in sorted(
        pairs.items())]


def simulated(pool, rng: np.random.Generator, policy: GatePolicy, factor: float = 1.0, offset_pct: float = 0.0,
              outage: int = 0):
    """One simulated analysis: windows of paired blocks drawn from a measured pair, sides swapped at random
    per block, each side shifted by its own instance offset, the candidate slowed by `factor`; in window
    `outage` (1-based, 0: none) the baseline refuses 80% of its requests, as when its pod is replaced."""
    candidate_blocks, baseline_blocks = pool[rng.integers(len(pool))]
    per_window = round(policy.analysis.window_s / policy.analysis.block_s)
    offsets = np.exp(rng.normal(0, math.log1p(offset_pct / 100), 2)) if offset_pct else np.ones(2)
    drawn = iter(rng.integers(0, len(candidate_blocks), 10_000))

    windows = iter(range(1, 10_000))

    def measure(seconds: float, warmup: float):
        documents = []
        down = next(windows) == outage
        picks = [next(drawn) for _ in range(per_window)]
        swaps = rng.random(per_window) < 0.5
        for side in (0, 1):
            blocks = [(baseline_blocks if swap != bool(side) else candidate_blocks)[i] for i, swap in
                      zip(picks, swaps, strict=True)]
            samples = np.concatenate(blocks) * offsets[side] * (factor if side == 0 else 1.0)
            refused = int(samples.size * 0.8) if down and side == 1 else 0
            documents.append({"samples_us": samples[refused:] * 1000, "counts": {
                "total": samples.size, "by_error": {"connection_refused": refused} if refused else {}},
                "requested_qps": QPS, "achieved_qps": QPS, "measured_seconds": seconds})
        return documents[0], documents[1]

    return analyze(measure, policy, keep_windows=False)


def simulate(pool, policy: GatePolicy, trials: int, factor: float, offset_pct: float, seed: int,
             outage: int = 0) -> dict:
    """Decision counts and times to decision over `trials` simulated analyses."""
    rng = np.random.default_rng(seed)
    counted: Counter = Counter()
    times = []
    for _ in range(trials):
        analysis = simulated(pool, rng, policy, factor, offset_pct, outage)
        counted[analysis.verdict.decision] += 1
        times.append(analysis.looks[-1].measured_s)
    return {"counts": dict(counted), "median_s": float(np.median(times)), "p90_s": float(np.percentile(times, 90))}


def power_table(pool, policy: GatePolicy, trials: int, offset_pct: float) -> dict[str, float | None]:
    """For each quantile, the smallest uniform slow-down its relative check alone fails in ≥95% of trials."""
    found: dict[str, float | None] = {}
    for label in ("p50", "p90", "p99"):
        data = policy.to_dict()
        for other in ("p50", "p90", "p99"):
            data["relative"][f"max_{other}_increase_pct"] = data["relative"][f"max_{label}_increase_pct"] \
                if other == label else None
        only = policy_from_dict(data)
        found[label] = None
        for factor in (1.10, 1.125, 1.15, 1.175, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0):
            result = simulate(pool, only, trials, factor, offset_pct, seed=7)
            rate = result["counts"].get("ROLLBACK", 0) / trials
            print(f"  {label} x{factor:.3f}: ROLLBACK {rate:.1%} (median {result['median_s']:.0f} s)", flush=True)
            if rate >= 0.95:
                found[label] = factor
                break
    return found


def look_speed(policy: GatePolicy) -> float:
    """Seconds for one look's statistics at 30,000 samples per side (60 blocks of 500)."""
    from components.analysis.looks import LookPlan, look_checks

    rng = np.random.default_rng(0)
    sides = []
    for role in ("candidate", "baseline"):
        side = Side(role, list(np.array_split(0.6 * np.exp(rng.standard_normal(30_000) * 0.3), 60)), 30_000)
        side.windows = [(QPS, QPS)]
        sides.append(side)
    plan = LookPlan.at(12, 60.0, 55.0, policy)
    look_checks(*sides, policy, plan)
    started = time.perf_counter()
    for _ in range(20):
        look_checks(*sides, policy, plan)
    return (time.perf_counter() - started) / 20


# --- the report ---------------------------------------------------------------------------------------------

def summary(name: str, results: list[dict]) -> str:
    """Counts and the time-to-decision distribution of real rollouts."""
    counted = Counter(r["decision"] for r in results)
    times = np.array([r["measured_s"] for r in results])
    return (f"{name:28} {counted['PROMOTE']:8d} {counted['INCONCLUSIVE']:13d} {counted['ROLLBACK']:9d}   "
            f"of {len(results):3d}   time to decision per side: median {np.median(times):5.1f} s, "
            f"p90 {np.percentile(times, 90):5.1f} s")


def main() -> None:
    """Run the phases asked for and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--noise-runs", type=int, default=10)
    parser.add_argument("--aa", type=int, default=40)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--faulty", type=int, default=5)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--keep", default="", help="directory for the pool and every rollout's outcome")
    parser.add_argument("--pool", default="", help="a pool kept by an earlier run (skips the noise phase)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    policy = GatePolicy()
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    figures: dict = {}
    pool = load_pool(Path(args.pool)) if args.pool else None
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.environ["MESHSERVE_STATE_DIR"] = str(work / "state")
        if phases & {"aa", "slow", "faulty"} or ("noise" in phases and pool is None):
            figures |= platform_phases(work, phases, args, policy, keep, pool)
            pool = figures.pop("pool", pool)
    if pool is not None and phases & {"sim", "power"}:
        figures |= simulation_phases(pool, phases, args, policy)
    if "speed" in phases:
        figures["look_seconds"] = look_speed(policy)
        print(f"\none look's statistics at 30,000 samples per side: {figures['look_seconds'] * 1000:.1f} ms")
    if keep:
        (keep / "figures.json").write_text(json.dumps(figures, indent=1, default=str))


def platform_phases(work: Path, phases: set[str], args, policy: GatePolicy, keep: Path | None, pool) -> dict:
    """The phases that need the local platform: noise, aa, slow, faulty."""
    from components.analysis.noise import instance_noise_pct, pair_estimate
    from components.platform.local import LocalPlatform
    from components.platform.protocol import ModelRef
    from components.steps.analyze.core import run_noise_runs
    from components.storage import upload_model

    figures: dict = {}
    models = publish_models(work)
    platform = LocalPlatform(work / "state")
    platform.deploy_version("digits", upload_model(Path(models["primary"]), "pvc://models/digits").storage_uri)
    platform.promote(ModelRef("digits"))
    header = f"{'case':28} {'PROMOTE':>8} {'INCONCLUSIVE':>13} {'ROLLBACK':>9}"
    try:
        if "noise" in phases and pool is None:
            print(f"\nnoise: {args.noise_runs} A/A runs, 30 s side by side at {QPS:.0f} qps", flush=True)
            pairs = run_noise_runs("digits", args.noise_runs, 30.0, LOAD, policy,
                                   lambda run, pair: print(f"  run {run:2d}: " + ", ".join(
                                       f"{k} {math.exp(v):.3f}" for k, v in pair.log_ratio.items()), flush=True))
            figures["instance_noise_pct"] = instance_noise_pct([pair_estimate(c, b) for c, b in pairs])
            print(f"instance noise (one instance's SD): {figures['instance_noise_pct']}")
            figures["pool"] = pool_of(pairs)
            if keep:
                save_pool(figures["pool"], keep / "pool.npz")
        real = {}
        if "aa" in phases:
            print(f"\nA/A: {args.aa} real rollouts at the default policy", flush=True)
            real["A/A (same model bytes)"] = rollouts(platform, models, "aa", args.aa, policy)
        if "slow" in phases:
            print(f"\nslow: {args.slow} real rollouts of the slower SVM", flush=True)
            real["slow SVM (more work)"] = rollouts(platform, models, "slow", args.slow, policy)
        if "faulty" in phases:
            print(f"\nfaulty: {args.faulty} real rollouts failing 1% of the candidate's requests", flush=True)
            router = platform.status()["router"]["http"]
            front, process = fault_front(router, work, 1.0)
            try:
                real["1% failing requests"] = rollouts(
                    platform, models, "faulty", args.faulty, policy,
                    lambda sides: replace(sides, candidate_url=front, baseline_url=front,
                                          candidate_headers=sides.candidate_headers + ("x-fault: on",)))
            finally:
                process.terminate()
        if real:
            print("\nreal rollouts on this machine (500 qps per side, default policy and budget)")
            print(header)
            for name, results in real.items():
                print(summary(name, results))
            figures["real"] = real
            if keep:
                (keep / "rollouts.json").write_text(json.dumps(real, indent=1))
    finally:
        platform.down()
    return figures


def simulation_phases(pool, phases: set[str], args, policy: GatePolicy) -> dict:
    """The simulated analyses, drawn from the measured pool."""
    figures: dict = {}
    noise = policy.statistics.instance_noise_for("p90")
    flat = policy_from_dict({"statistics": {"instance_noise_pct": 0.0}})
    equal_noise = policy_from_dict({"statistics": {"instance_noise_pct": noise}})
    cases = [("A/A, no instance offsets", flat, 1.0, 0.0, 0), (f"A/A, offsets 1 SD = {noise:.1f}%",
                                                              equal_noise, 1.0, noise, 0),
             ("+20%, no offsets", flat, 1.2, 0.0, 0), ("+20%, offsets", equal_noise, 1.2, noise, 0),
             ("A/A, baseline down in w2", equal_noise, 1.0, noise, 2),
             ("+20%, baseline down in w1", equal_noise, 1.2, noise, 1)]
    if "sim" in phases:
        print(f"\nsimulation: {args.trials} analyses per case from {len(pool)} measured pairs, every look taken")
        print(f"{'case':28} {'PROMOTE':>8} {'INCONCLUSIVE':>13} {'ROLLBACK':>9}   time to decision per side")
        figures["simulation"] = {}
        for index, (name, case_policy, factor, offset, outage) in enumerate(cases):
            result = simulate(pool, case_policy, args.trials, factor, offset, seed=index, outage=outage)
            counts = result["counts"]
            figures["simulation"][name] = result
            print(f"{name:28} {counts.get('PROMOTE', 0):8d} {counts.get('INCONCLUSIVE', 0):13d} "
                  f"{counts.get('ROLLBACK', 0):9d}   median {result['median_s']:5.1f} s, p90 {result['p90_s']:5.1f} s",
                  flush=True)
    if "power" in phases:
        print(f"\npower: each quantile's check alone, offsets 1 SD = {noise:.1f}%, {args.trials // 5} trials a factor")
        figures["detectable"] = power_table(pool, equal_noise, max(100, args.trials // 5), noise)
        print("smallest uniform slow-down caught with ≥95% power within the budget: " + ", ".join(
            f"{label} {'+' + format(f - 1, '.1%') if f else 'over +100%'}" for label, f in
            figures["detectable"].items()))
    return figures


if __name__ == "__main__":
    main()
