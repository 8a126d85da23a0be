"""Seed 003's behaviour on the local platform: replicas following QPS under an HPA on requests per second.

A digits model (scikit-learn) is deployed with one replica behind the router; the local autoscaler runs the
HPA's calculation every `--sync` seconds (target `--target` requests per second per replica, 1 to 10 replicas,
scale-down stabilization `--window` s) on the QPS the router's live metrics give (the local Prometheus). The
load, from `meshserve bench` in open loop, ramps 5 -> 40 -> 5 qps: 5 for 30 s, up to 40 over 60 s, 40 for 60 s,
down to 5 over 60 s, 5 for `--tail` s. Every sync it records the measured QPS, the replicas and the p99 through
the router (Istio's histogram, 10 s window); it prints a table every 10 s, the requests that failed, and writes
an HTML report plotting QPS, replicas and p99 against time.

Run: `.venv/bin/python tests/bench/bench_autoscaling.py [--sync 2] [--window 30] [--html ramp.html]`
(`make bench` runs it; about 5 minutes). Loads are bounded in time and rate and target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.metrics.prometheus import PrometheusProvider  # noqa: E402
from components.metrics.templates import QueryArguments, render_query, request_duration  # noqa: E402
from components.platform.autoscaler import LocalAutoscaler, ScalingTarget  # noqa: E402
from components.platform.local import LocalPlatform  # noqa: E402
from components.platform.protocol import ModelRef  # noqa: E402
from components.reports.plots import figure, png_base64  # noqa: E402

PHASES = [(5, 5, 30), (5, 40, 60), (40, 40, 60), (40, 5, 60)]  # (from qps, to qps, seconds); then the tail at 5


def offered(schedule: list[tuple[float, float, float]], at: float) -> float:
    """The rate the load sends `at` seconds after it began."""
    begin = 0.0
    for start, end, seconds in schedule:
        if at < begin + seconds:
            return start + (end - start) * (at - begin) / seconds
        begin += seconds
    return schedule[-1][1]


def run_load(url: str, schedule: list[tuple[float, float, float]], out: Path, results: list[dict]) -> None:
    """Each phase as one `meshserve bench` in open loop, one after the other; their results appended."""
    for index, (start, end, seconds) in enumerate(schedule):
        ramp = ["--ramp-to", str(end)] if end != start else []
        target = out / f"phase-{index}.json"
        subprocess.run([sys.executable, "-m", "pipelines.cli", "bench", url, "--protocol", "kserve-v1", "--model",
                        "digits", "--sample", "digits", "-qps", str(start), *ramp, "-t", f"{seconds}s", "-c", "16",
                        "--no-samples", "--json", str(target)], cwd=REPO, check=True, capture_output=True)
        results.append(json.loads(target.read_text()))


def report(rows: list[dict], path: Path, title: str) -> None:
    """QPS (offered and measured), replicas and p99 against time, as an HTML page with one PNG."""
    shown, (qps, replicas, p99) = figure(8, 7, rows=3, sharex=True)
    times = [row["t"] for row in rows]
    qps.plot(times, [row["offered"] for row in rows], label="offered", linestyle="--")
    qps.plot(times, [row["qps"] or 0 for row in rows], label="measured (router)")
    qps.set_ylabel("requests/s")
    qps.legend()
    replicas.step(times, [row["replicas"] for row in rows], where="post", label="ready replicas")
    replicas.step(times, [row["desired"] for row in rows], where="post", linestyle=":", label="desired")
    replicas.set_ylabel("replicas")
    replicas.legend()
    p99.plot(times, [row["p99"] for row in rows], color="tab:red")
    p99.set_ylabel("p99 (ms)")
    p99.set_xlabel("seconds since the load began")
    image = png_base64(shown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>"
                    f'<img alt="QPS, replicas and p99 against time" src="data:image/png;base64,{image}">')


def main() -> None:
    """Deploy, autoscale under the ramp, print and plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sync", type=float, default=2.0, help="seconds between the autoscaler's syncs")
    parser.add_argument("--window", type=float, default=30.0, help="scale-down stabilization window (s)")
    parser.add_argument("--target", type=float, default=10.0, help="requests per second per replica")
    parser.add_argument("--tail", type=float, default=90.0, help="seconds at 5 qps after the ramp")
    parser.add_argument("--html", default="autoscaling-ramp.html")
    args = parser.parse_args()
    schedule = [*PHASES, (5, 5, args.tail)]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ["MESHSERVE_STATE_DIR"] = str(root)
        from components.storage import upload_model
        from components.training import TrainConfig, train_model

        uri = upload_model(train_model(TrainConfig(framework="sklearn", dataset="digits"), root / "m").model_dir,
                           "pvc://models/digits").storage_uri
        platform = LocalPlatform(root)
        try:
            version = platform.deploy_version("digits", uri, replicas=1).version
            platform.promote(ModelRef("digits"))
            prometheus = PrometheusProvider(platform.metrics_address())
            autoscaler = LocalAutoscaler(platform, [ScalingTarget("digits", "hpa-qps", 1, 10, args.target,
                                                                  stabilization_s=args.window)])
            results: list[dict] = []
            load = threading.Thread(target=run_load, args=(platform.status().gateway["http"], schedule, root,
                                                           results))
            began = time.monotonic()
            load.start()
            rows = []
            p99_query = render_query(request_duration(0.99), QueryArguments("default", version, "10s"))
            print(f"target {args.target:g} qps per replica, 1 to 10 replicas, sync {args.sync:g} s, "
                  f"scale-down window {args.window:g} s")
            print("   t  offered  measured  replicas  desired  p99 ms  reason")
            while load.is_alive():
                at = time.monotonic() - began
                outcome = autoscaler.sync()[0]
                latency = prometheus.query(p99_query)
                row = {"t": round(at, 1), "offered": round(offered(schedule, at), 1), "qps": outcome.reading,
                       "replicas": outcome.current, "desired": outcome.desired, "reason": outcome.reason,
                       "p99": latency.value if latency.usable else float("nan")}
                rows.append(row)
                if not rows[:-1] or int(at // 10) != int(rows[-2]["t"] // 10):
                    print(f"{at:4.0f}  {row['offered']:7.1f}  {row['qps'] or 0:8.1f}  {row['replicas']:8d}  "
                          f"{row['desired']:7d}  {row['p99']:6.1f}  {row['reason']}")
                time.sleep(max(0.0, args.sync - (time.monotonic() - began - at)))
            load.join()
            total = sum(result["counts"]["total"] for result in results)
            failed = total - sum(result["counts"]["success"] for result in results)
            print(f"requests {total}, failed {failed}; replicas at most {max(r['replicas'] for r in rows)}, "
                  f"at the end {rows[-1]['replicas']}")
            report(rows, Path(args.html), "Seed 003 locally: an HPA on QPS under a 5 -> 40 -> 5 qps ramp")
            print(f"report: {args.html}")
        finally:
            platform.down()


if __name__ == "__main__":
    main()
