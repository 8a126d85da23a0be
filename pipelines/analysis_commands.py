"""`meshserve analyze`: the deployed canary against a baseline, measured side by side until it can tell.

Exit codes, like `meshserve gate`: 0 PROMOTE, 3 ROLLBACK, 4 INCONCLUSIVE, 2 bad input, 130 interrupted
(the baseline copy is removed either way).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from components.errors import InvalidInputError


def add_analysis_commands(commands) -> None:
    """analyze."""
    analyze = commands.add_parser(
        "analyze", help="measure the canary and a baseline side by side until the gate can decide",
        description="Windows of side-by-side load, a look after each (alpha spent over the budget's looks); "
                    "stops at the first look that settles every check. Exit codes: 0 PROMOTE, 3 ROLLBACK, "
                    "4 INCONCLUSIVE, 2 bad input, 130 interrupted.")
    analyze.add_argument("--platform", default="local", help="local or kubernetes")
    analyze.add_argument("--name", required=True, help="the model whose canary is analysed")
    analyze.add_argument("--namespace", default="default", help="kubernetes: the model's namespace")
    analyze.add_argument("--kubeconfig", default="", help="kubernetes: kubeconfig file")
    analyze.add_argument("--context", default="", help="kubernetes: kubeconfig context")
    analyze.add_argument("--budget", help="most measured time per side, e.g. 120s (policy analysis.max_duration_s)")
    analyze.add_argument("--window", help="time between looks, e.g. 5s (policy analysis.window_s)")
    analyze.add_argument("--baseline", choices=["copy", "primary"],
                         help="a fresh copy of the primary (default) or the primary itself")
    analyze.add_argument("--qps", type=float, default=500.0, help="requests per second to each side (default 500)")
    analyze.add_argument("--protocol", default="", help="kserve-v1, v2-rest, v2-grpc, ... (as bench; default: the "
                         "one the deployed server speaks itself)")
    analyze.add_argument("--sample", default="", help="send rows of this dataset's test split (e.g. digits)")
    analyze.add_argument("--payload", default="", help="the request body (JSON), instead of --sample")
    analyze.add_argument("--policy", help="policy file (YAML or JSON)")
    analyze.add_argument("--on-inconclusive", choices=["rollback", "hold"])
    analyze.add_argument("--candidate-model", help="candidate model directory or manifest (accuracy checks)")
    analyze.add_argument("--baseline-model", help="baseline model directory or manifest")
    analyze.add_argument("--json", required=True, help="where to write the verdict with its trace")
    analyze.add_argument("--html", help="where to write the HTML trace")
    analyze.add_argument("--quiet", action="store_true", help="no line per look")
    analyze.set_defaults(handler=_cmd_analyze)

    noise = commands.add_parser(
        "noise", help="measure the local platform's instance noise with A/A runs; write it into a policy file",
        description="Each run serves the primary's own model as a canary with no weight and a fresh copy as "
                    "the baseline, measures both side by side, and removes both. Needs a promoted model and no "
                    "rollout under way. Run it once per machine (or node type) and after changing the "
                    "serving setup; pass the written policy to analyze, gate and the pipelines.")
    noise.add_argument("--name", required=True, help="a deployed, promoted model")
    noise.add_argument("--runs", type=int, default=10, help="A/A runs (default 10, at least 3)")
    noise.add_argument("--duration", default="30s", help="measured time per run and side (default 30s)")
    noise.add_argument("--qps", type=float, default=500.0, help="requests per second to each side (default 500)")
    noise.add_argument("--protocol", default="", help="as bench (default: the local model server's own)")
    noise.add_argument("--sample", default="", help="send rows of this dataset's test split (e.g. digits)")
    noise.add_argument("--policy", help="the policy to start from (YAML or JSON)")
    noise.add_argument("--policy-out", required=True, help="where to write the policy with the measured noise")
    noise.set_defaults(handler=_cmd_noise)


def _overrides(args: argparse.Namespace) -> dict:
    from components.benchmark.settings import parse_duration

    overrides: dict = {}
    if args.budget:
        overrides["analysis.max_duration_s"] = parse_duration(args.budget, "budget")
    if args.window:
        overrides["analysis.window_s"] = parse_duration(args.window, "window")
    if args.baseline:
        overrides["analysis.baseline"] = args.baseline
    if args.on_inconclusive:
        overrides["on_inconclusive"] = args.on_inconclusive
    return overrides


def _cmd_analyze(args: argparse.Namespace) -> int:
    from components.gate.policy import load_policy
    from components.paths import checked_outputs
    from components.platform.registry import PLATFORMS, ClusterAccess
    from components.steps.analyze.core import Load, format_look, run_analysis_on_platform, write_analysis
    from components.steps.gate.core import EXIT_CODES, read_model

    if args.platform not in PLATFORMS:
        raise InvalidInputError("platform", f"unknown platform {args.platform!r}", f"use one of {', '.join(PLATFORMS)}")
    if not 0 < args.qps <= 20000:
        raise InvalidInputError("qps", f"{args.qps} is out of range", "pass 1 to 20000 requests per second")
    policy = load_policy(Path(args.policy) if args.policy else None, _overrides(args))
    checked_outputs({"json": args.json, "html": args.html}, [args.policy, args.candidate_model, args.baseline_model])
    load = Load(protocol=args.protocol, model=args.name, sample=args.sample, payload=args.payload, qps=args.qps)
    candidate_model = read_model(Path(args.candidate_model) if args.candidate_model else None)
    baseline_model = read_model(Path(args.baseline_model) if args.baseline_model else None)
    on_look = None if args.quiet else (lambda look: print(format_look(look), flush=True))
    analysis = run_analysis_on_platform(args.name, load, policy, platform=args.platform, namespace=args.namespace,
                                        candidate_model=candidate_model, baseline_model=baseline_model,
                                        on_look=on_look, cluster=ClusterAccess(args.kubeconfig, args.context))
    write_analysis(analysis, Path(args.json), Path(args.html) if args.html else None)
    verdict = analysis.verdict
    print(f"{verdict.decision} ({verdict.action}) after {len(analysis.looks)} look(s): {analysis.stopped}")
    if verdict.decision != "PROMOTE":
        print(f"meshserve analyze: {verdict.summary()}", file=sys.stderr)
    return EXIT_CODES[verdict.decision]


def _cmd_noise(args: argparse.Namespace) -> None:
    import yaml

    from components.analysis.noise import instance_noise_pct, pair_estimate
    from components.benchmark.settings import parse_duration
    from components.gate.policy import load_policy, policy_from_dict
    from components.paths import checked_outputs
    from components.steps.analyze.core import Load, run_noise_runs

    if not 3 <= args.runs <= 100:
        raise InvalidInputError("runs", f"{args.runs} is out of range", "pass 3 to 100 A/A runs")
    seconds = parse_duration(args.duration, "duration")
    if not 1 <= seconds <= 600:
        raise InvalidInputError("duration", f"{seconds:g} s is out of range", "pass 1s to 10m")
    checked_outputs({"policy_out": args.policy_out}, [args.policy])
    policy = load_policy(Path(args.policy) if args.policy else None)
    load = Load(protocol=args.protocol, model=args.name, sample=args.sample, qps=args.qps)

    def report(run: int, pair) -> None:
        ratios = ", ".join(f"{label} {math.exp(value):.3f}" for label, value in pair.log_ratio.items())
        print(f"A/A run {run:2d}: ratios {ratios}", flush=True)

    pairs = run_noise_runs(args.name, args.runs, seconds, load, policy, report)
    noise = instance_noise_pct([pair_estimate(candidate, baseline) for candidate, baseline in pairs])
    data = policy.to_dict()
    data["statistics"].update({f"instance_noise_{label}_pct": pct for label, pct in noise.items()},
                              instance_noise_pct=None)
    policy_from_dict(data)  # what is written must load
    Path(args.policy_out).write_text(yaml.safe_dump(data, sort_keys=False))
    print("instance noise (one instance's SD): " + ", ".join(f"{k} {v:.2f}%" for k, v in noise.items())
          + f"; written to {args.policy_out}")
