"""`meshserve capacity`: the highest rate one replica serves within an SLO, in bounded open-loop steps decided
by the sequential analysis, and the autoscaler target it gives (components/capacity/search.py).

Exit codes: 0 a capacity was found, 4 not even the first rate was within the SLO, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

from components.capacity.search import Look
from components.errors import InvalidInputError

NO_CAPACITY = 4  # as INCONCLUSIVE elsewhere: not even the first rate was shown within the SLO


def add_capacity_commands(commands) -> None:
    """capacity."""
    capacity = commands.add_parser(
        "capacity", help="the highest rate one replica serves within an SLO, and the scale target it gives",
        description="Open-loop steps from --start-qps by --step-qps to --max-qps, each up to --max-looks looks of "
                    "--look-seconds, decided after every look (alpha spent over the looks); stops at the first "
                    "step not shown within the SLO. Exit codes: 0 found, 4 not even the first rate, 2 bad input.")
    capacity.add_argument("url", help="one replica's endpoint: http(s)://host:port for REST, host:port for gRPC")
    capacity.add_argument("--protocol", default="kserve-v1", help="as bench: kserve-v1, v2-rest, v2-grpc, ...")
    capacity.add_argument("--model", required=True, help="model name")
    capacity.add_argument("--sample", default="", help="send rows of this dataset's test split (e.g. digits)")
    capacity.add_argument("--payload", default="", help="the request body (JSON), instead of --sample")
    capacity.add_argument("-H", action="append", default=[], help="extra header 'Name: value' (repeatable)")
    capacity.add_argument("--p99-ms", type=float, default=10.0, help="the SLO's p99 in ms (default 10)")
    capacity.add_argument("--success", type=float, default=99.9, help="the SLO's success percent (default 99.9)")
    capacity.add_argument("--start-qps", type=float, default=100.0)
    capacity.add_argument("--step-qps", type=float, default=100.0)
    capacity.add_argument("--max-qps", type=float, default=2000.0)
    capacity.add_argument("--look-seconds", type=float, default=5.0, help="seconds of load per look (1 to 60)")
    capacity.add_argument("--max-looks", type=int, default=5, help="looks per step before it is inconclusive")
    capacity.add_argument("--alpha", type=float, default=0.05, help="each step's error rate over its looks")
    capacity.add_argument("-c", type=int, default=64, help="most requests in flight (open loop)")
    capacity.add_argument("--headroom", type=float, default=0.7,
                          help="the scale target is the capacity times this (default 0.7)")
    capacity.add_argument("--json", help="where to write the search (steps, capacity, scale target and source)")
    capacity.add_argument("--html", help="where to write p99 against QPS as an HTML report")
    capacity.set_defaults(handler=_cmd_capacity)


def _cmd_capacity(args: argparse.Namespace) -> int:
    from components.capacity.search import CapacitySlo, SearchPlan, capacity_document, search_capacity

    if not (math.isfinite(args.p99_ms) and args.p99_ms > 0):
        raise InvalidInputError("p99_ms", f"{args.p99_ms:g} is not a positive number", "pass milliseconds above 0")
    if not 0 < args.success < 100:
        raise InvalidInputError("success", f"{args.success:g} is out of range", "pass a percent, e.g. 99.9")
    if not 0 < args.headroom <= 1:
        raise InvalidInputError("headroom", f"{args.headroom:g} is out of range", "pass 0 < headroom <= 1")
    if not 1 <= args.look_seconds <= 60:
        raise InvalidInputError("look_seconds", f"{args.look_seconds:g} is out of range", "pass 1 to 60")
    plan = SearchPlan(args.start_qps, args.step_qps, args.max_qps, args.look_seconds, args.max_looks,
                      args.alpha).validated()
    slo = CapacitySlo(args.p99_ms, args.success / 100)
    measure = bench_looks(args.url, protocol=args.protocol, model=args.model, sample=args.sample,
                          payload=args.payload, headers=tuple(args.H), concurrency=args.c)
    print("    qps  achieved  requests  slow  failed  looks  p99 ms  verdict")
    result = search_capacity(measure, plan, slo, on_step=lambda step: print(
        f"{step.qps:7g}  {step.achieved_qps:8.1f}  {step.requests:8d}  {step.slow:4d}  {step.failed:6d}  "
        f"{step.looks:5d}  {step.p99_ms:6.2f}  {step.verdict}: {step.why}", flush=True))
    document = capacity_document(result, args.headroom)
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2))
    if args.html:
        _write_report(document, Path(args.html))
    if result.capacity_qps is None:
        print(f"capacity: none; {plan.start_qps:g} qps is not within p99 <= {slo.p99_ms:g} ms")
        return NO_CAPACITY
    print(f"capacity: {result.capacity_qps:g} qps per replica (p99 <= {slo.p99_ms:g} ms, success >= "
          f"{slo.success:.1%}); scale target {document['scale_target']:g} qps per replica at headroom "
          f"{args.headroom:g}")
    return 0


def bench_looks(url: str, *, protocol: str, model: str, sample: str = "", payload: str = "",
                headers: tuple[str, ...] = (), concurrency: int = 64) -> Callable[[float, float], Look]:
    """Looks measured by meshserve's load generator in open loop against `url` (one replica's endpoint)."""
    from components.steps.benchmark.core import run_benchmark_step

    def measure(qps: float, seconds: float) -> Look:
        result = run_benchmark_step(url, protocol=protocol, model=model, qps=qps, duration=seconds,
                                    concurrency=concurrency, headers=headers, payload=payload, sample=sample)
        total, success = result["counts"]["total"], result["counts"]["success"]
        return Look(qps, result["achieved_qps"], total, total - success,
                    [sample_us / 1000 for sample_us in result.get("samples_us", [])])

    return measure


def _write_report(document: dict, path: Path) -> None:
    """p99 against the rate offered, each step marked by its verdict, the SLO and the capacity drawn."""
    from components.reports.plots import figure, png_base64

    shown, axes = figure(7, 4)
    steps = [step for step in document["steps"] if step["p99_ms"] is not None]
    axes.plot([step["qps"] for step in steps], [step["p99_ms"] for step in steps], marker="o", color="tab:blue")
    for step in steps:
        axes.annotate(step["verdict"], (step["qps"], step["p99_ms"]), fontsize=7, textcoords="offset points",
                      xytext=(0, 6), ha="center")
    axes.axhline(document["slo"]["p99_ms"], color="tab:red", linestyle="--", label="SLO p99")
    if document["capacity_qps"] is not None:
        axes.axvline(document["capacity_qps"], color="tab:green", linestyle=":", label="capacity")
    axes.set_xlabel("requests per second (open loop)")
    axes.set_ylabel("p99 (ms)")
    axes.legend()
    image = png_base64(shown)
    path.write_text("<!doctype html><meta charset=utf-8><title>meshserve capacity</title>"
                    f"<h1>Capacity: {_qps(document['capacity_qps'])} per replica</h1>"
                    f"<p>{document['scale_target_source'] or 'no rate was within the SLO'}</p>"
                    f'<img alt="p99 against QPS" src="data:image/png;base64,{image}">')


def _qps(value: float | None) -> str:
    """A rate for the report's heading."""
    return "none" if value is None else f"{value:g} qps"
