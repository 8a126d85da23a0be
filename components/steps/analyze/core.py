"""The analyze step's core, called by the CLI, the KFP component and the Hera template.

It measures the deployed canary against a baseline side by side, window by window, and judges after
each window (components/analysis). By default the baseline is a fresh copy of the primary started for
the analysis (the same model and as many instances as the canary, the same age, no production weight)
and removed afterwards, also when the analysis fails or is interrupted; `analysis.baseline: primary`
compares with the primary itself. A first deploy (no primary) is judged on its SLOs alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.analysis.looks import Side
from components.analysis.noise import PairEstimate
from components.analysis.run import WINDOW_WARMUP_S, Analysis, Look, analyze
from components.errors import InvalidInputError
from components.gate.policy import GatePolicy, policy_from_dict
from components.platform.protocol import ModelRef, Platform
from components.platform.registry import ClusterAccess, platform_for
from components.rollout.contract import AnalysisSides


@dataclass(frozen=True)
class Load:
    """The synthetic load both sides get: protocol ("": the one the versions' server speaks itself), model,
    sample rows and rate."""

    protocol: str = ""
    model: str = ""
    sample: str = ""
    payload: str = ""
    qps: float = 500.0
    concurrency: int = 8
    timeout_s: float = 3.0


def window_measurer(sides: AnalysisSides, load: Load) -> Callable[[float, float], tuple[dict, dict | None]]:
    """A function that measures one window of both sides at the same moments (the candidate alone without
    a baseline). The two loads are staggered by half a request interval; which one leads alternates from
    window to window, so that neither side always goes first."""
    from components.steps.benchmark.core import run_benchmark_step, run_paired_benchmark_step

    common: dict[str, Any] = {"protocol": load_protocol(sides, load), "qps": load.qps,
                              "concurrency": load.concurrency, "timeout": load.timeout_s, "payload": load.payload,
                              "sample": load.sample, "keep_samples": True}
    candidate_model, baseline_model = sides.candidate_model or load.model, sides.baseline_model or load.model
    windows = 0

    def measure(seconds: float, warmup: float) -> tuple[dict, dict | None]:
        nonlocal windows
        windows += 1
        if not sides.with_baseline:
            return run_benchmark_step(sides.candidate_url, headers=sides.candidate_headers, model=candidate_model,
                                      duration=seconds, warmup=warmup, **common), None
        pair = [(sides.candidate_url, sides.candidate_headers, candidate_model),
                (sides.baseline_url, sides.baseline_headers, baseline_model)]
        lead, follow = pair if windows % 2 else pair[::-1]
        first, second = run_paired_benchmark_step(lead[0], follow[0], candidate_headers=lead[1],
                                                  baseline_headers=follow[1], model=lead[2], baseline_model=follow[2],
                                                  duration=seconds, warmup=warmup, **common)
        return (first, second) if windows % 2 else (second, first)

    return measure


def load_protocol(sides: AnalysisSides, load: Load) -> str:
    """The load's protocol: the one asked for, if the versions' server speaks it, else the server's own."""
    if not load.protocol:
        return sides.protocols[0]
    if load.protocol not in sides.protocols:
        raise InvalidInputError("protocol", f"the deployed server does not speak {load.protocol}",
                                f"use one of {', '.join(sides.protocols)}, or leave it empty for "
                                f"{sides.protocols[0]}")
    return load.protocol


def run_analysis(sides: AnalysisSides, load: Load, policy: GatePolicy, *, candidate_model: dict | None = None,
                 baseline_model: dict | None = None, on_look: Callable[[Look], None] | None = None,
                 context: dict | None = None) -> Analysis:
    """Analyse the candidate against the baseline (or its SLOs alone) as the policy says."""
    load_record = {"protocol": load_protocol(sides, load), "model": load.model, "qps": load.qps,
                   "sample": load.sample}
    return analyze(window_measurer(sides, load), policy, with_baseline=sides.with_baseline,
                   candidate_model=candidate_model, baseline_model=baseline_model if sides.with_baseline else None,
                   instances=sides.instances, on_look=on_look,
                   context={"load": load_record, "instances_per_side": sides.instances, **(context or {})})


def run_analysis_on_platform(name: str, load: Load, policy: GatePolicy, *, platform: str = "local",
                             namespace: str = "default", candidate_model: dict | None = None,
                             baseline_model: dict | None = None, on_look: Callable[[Look], None] | None = None,
                             cluster: ClusterAccess | None = None, owner: str = "") -> Analysis:
    """Analyse a deployed model's canary on its platform (named), as `analyse_on` does."""
    return analyse_on(platform_for(platform, cluster), ModelRef(name, namespace), load, policy,
                      candidate_model=candidate_model, baseline_model=baseline_model, on_look=on_look, owner=owner,
                      context={"platform": platform})


def analyse_on(target: Platform, model: ModelRef, load: Load, policy: GatePolicy, *,
               candidate_model: dict | None = None, baseline_model: dict | None = None,
               on_look: Callable[[Look], None] | None = None, owner: str = "", context: dict | None = None) -> Analysis:
    """Analyse a deployed model's canary, starting (and always removing) the baseline copy when the policy asks
    for one. `owner` (the run that deployed the canary) renews its lease on the rollout before it starts and after
    every look: the analysis is the longest part of a rollout."""
    name, namespace = model.name, model.namespace
    if owner:
        target.renew(model, owner)
        on_look = _renewing(target, model, owner, on_look)
    sides = target.analysis_sides(name, namespace)
    copy = sides.with_baseline and policy.analysis.baseline == "copy"
    context = {**(context or {}), "name": name, "baseline": policy.analysis.baseline if sides.with_baseline
               else "none (first deploy)"}
    if not copy:
        return run_analysis(sides, load, policy, candidate_model=candidate_model, baseline_model=baseline_model,
                            on_look=on_look, context=context)
    try:
        sides = target.start_baseline(name, namespace)
        context["baseline_version"] = sides.baseline_version
        return run_analysis(sides, load, policy, candidate_model=candidate_model,
                            baseline_model=baseline_model, on_look=on_look, context=context)
    finally:
        target.stop_baseline(name, namespace)


def _renewing(target: Platform, model: ModelRef, owner: str,
              on_look: Callable[[Look], None] | None) -> Callable[[Look], None]:
    """`on_look`, renewing the owner's lease first."""

    def renew_then_report(look: Look) -> None:
        target.renew(model, owner)
        if on_look is not None:
            on_look(look)

    return renew_then_report


def with_budget(policy: GatePolicy, budget_s: float) -> GatePolicy:
    """The policy with its analysis budget set to `budget_s` seconds per side (0 keeps the policy's)."""
    if not budget_s:
        return policy
    data = policy.to_dict()
    data["analysis"]["max_duration_s"] = budget_s
    return policy_from_dict(data)


def write_analysis(analysis: Analysis, verdict: Path, report: Path | None = None,
                   results: tuple[Path, Path] | None = None) -> None:
    """The verdict (with its trace), the HTML report, and each side's merged result, where asked."""
    from components.analysis.report import html_trace
    from components.benchmark.result import write_result

    verdict.parent.mkdir(parents=True, exist_ok=True)
    verdict.write_text(json.dumps(analysis.to_dict(), indent=1, allow_nan=False) + "\n")
    if report is not None:
        report.write_text(html_trace(analysis))
    if results is not None:
        merged = analysis.results()
        for role, path in zip(("candidate", "baseline"), results, strict=True):
            write_result(merged.get(role, {"schema": None, "note": f"no {role} was measured"}), path)


def format_look(look: Look) -> str:
    """One progress line per look: time, decision so far, and each relative or SLO quantile check."""
    parts = [f"{check.name.removeprefix('relative_')} {check.value:.3f} [{check.interval[0]:.3f}, "
             f"{check.interval[1]:.3f}] {check.status}" for check in look.checks
             if check.interval is not None and check.value is not None and check.name.startswith(("relative_", "slo_"))]
    return f"look {look.index:2d} at {look.measured_s:6.1f} s: {look.decision:12} " + "; ".join(parts)


def run_noise_runs(name: str, runs: int, seconds: float, load: Load, policy: GatePolicy,
                   on_run: Callable[[int, PairEstimate], None] | None = None) -> list[tuple[Side, Side]]:
    """A/A runs on the local platform: each deploys the primary's own model as a canary with no weight, starts
    a fresh copy as the baseline, measures both side by side, then removes both. Returns each run's two
    sides (their estimates go to `on_run` as they come)."""
    from components.analysis.noise import pair_estimate
    from components.platform.local import LocalPlatform
    from components.platform.state import processes_of

    platform = LocalPlatform()
    record = dict(platform.state.records()).get(name)
    if record is None or record.primary is None or record.canary is not None:
        raise InvalidInputError("name", f"{name} needs a primary and no canary for A/A runs",
                                "deploy and promote the model, and finish any rollout first")
    blocks = max(1, round(policy.analysis.window_s / policy.analysis.block_s))
    estimates = []
    for run in range(1, runs + 1):
        platform.deploy_version(name, record.primary.storage_uri, 0, len(processes_of(record.primary)),
                        allow_same_model=True, version=f"{record.primary.version}-aa{run}")
        try:
            sides = platform.start_baseline(name)
            candidate, baseline = Side("candidate"), Side("baseline")
            measure = window_measurer(sides, load)
            for index in range(max(1, round(seconds / policy.analysis.window_s))):
                warmup = policy.analysis.warmup_s if index == 0 else WINDOW_WARMUP_S
                measured, copied = measure(policy.analysis.window_s, warmup)
                if copied is None:  # start_baseline always gives the A/A copy a URL
                    raise ValueError("an A/A run measured no baseline")
                candidate.add_window(measured, blocks)
                baseline.add_window(copied, blocks)
        finally:
            platform.rollback(ModelRef(name))
        estimates.append((candidate, baseline))
        if on_run is not None:
            on_run(run, pair_estimate(candidate, baseline))
    return estimates
