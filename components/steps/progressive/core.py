"""The progressive-rollout step's core, called by the CLI (`rollout`, `resume`), the KFP component and the Hera
template: it drives the model's canary through the rollout policy's steps on its platform, as a controller would
(components/progressive/controller.py), and writes what each step saw."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from components.analysis.run import Analysis
from components.errors import InvalidInputError
from components.gate.policy import GatePolicy, policy_from_dict
from components.platform.protocol import ModelRef, Platform
from components.platform.registry import ClusterAccess, platform_for
from components.progressive.controller import ProgressiveRollout
from components.progressive.guard import LiveGuard
from components.progressive.policy import RolloutPolicy, rollout_policy_from_dict
from components.rollout.progress import Progress, StepRecord
from components.steps.analyze.core import Load, analyse_on


@dataclass(frozen=True)
class RolloutOutcome:
    """Where the rollout ended, and the last analysis this driver ran (None when it ran none)."""

    progress: Progress
    analysis: Analysis | None = None


def run_progressive_rollout(name: str, policy: RolloutPolicy, gate: GatePolicy, load: Load, *,
                            platform: str = "local", namespace: str = "default", owner: str = "",
                            candidate_model: dict | None = None, baseline_model: dict | None = None,
                            cluster: ClusterAccess | None = None,
                            report: Callable[[str], None] = print) -> RolloutOutcome:
    """Drive the model's canary to promotion, rollback or a hold; a rollout of that canary already under way (its
    driver killed) is resumed where it stood. `owner` "" acts as the run that deployed the canary."""
    target = platform_for(platform, cluster)
    model = ModelRef(name, namespace)
    status = target.status(namespace).model(name)
    tracks = status.tracks() if status else {}
    if "canary" not in tracks:
        stored = target.progress(model)
        if stored is not None and stored.finished:
            report(f"{name} {stored.version}: the rollout already ended ({stored.phase}: {stored.message})")
            return RolloutOutcome(stored)
        raise InvalidInputError("name", f"{name} has no canary to roll out", "deploy the new version first "
                                "(meshserve deploy --canary-percent 0)")
    canary = next(v for v in status.versions if v.track == "canary") if status else None
    owner = owner or (canary.owner if canary else "")
    rollout = ProgressiveRollout(
        target, model, policy, live_guard(target, policy, namespace),
        lambda on_look: analyse_on(target, model, load, gate, candidate_model=candidate_model,
                                   baseline_model=baseline_model, on_look=on_look, owner=owner,
                                   context={"platform": platform}),
        owner, gate.on_inconclusive, first_deploy="primary" not in tracks, report=report)
    fresh = Progress(tracks["canary"], owner=owner, policy=policy.to_dict(), gate=gate.to_dict(), load=asdict(load))
    progress = rollout.drive(fresh)
    return RolloutOutcome(progress, rollout.analyses[-1] if rollout.analyses else None)


def run_progressive_step(name: str, *, platform: str, namespace: str, protocol: str, sample: str, qps: float,
                         budget_s: float, policy: dict, rollout_policy: dict, owner: str,
                         candidate_manifest: Path | None, baseline_manifest: Path | None) -> RolloutOutcome:
    """The pipelines' step (KFP and Argo alike): the policies as the run passed them, the models' manifests as
    artifacts (the baseline's absent on a first deploy)."""
    from components.steps.analyze.core import with_budget
    from components.steps.gate.core import read_model

    return run_progressive_rollout(
        name, rollout_policy_from_dict(rollout_policy), with_budget(policy_from_dict(policy), budget_s),
        Load(protocol=protocol, model=name, sample=sample, qps=qps), platform=platform, namespace=namespace,
        owner=owner, candidate_model=read_model(candidate_manifest), baseline_model=read_model(baseline_manifest))


def run_resume(name: str, *, platform: str = "local", namespace: str = "default",
               cluster: ClusterAccess | None = None, report: Callable[[str], None] = print) -> RolloutOutcome:
    """Resume the model's progressive rollout with the policies it was started with (kept with its progress)."""
    stored = platform_for(platform, cluster).progress(ModelRef(name, namespace))
    if stored is None:
        raise InvalidInputError("name", f"{name} has no progressive rollout to resume",
                                "start one with `meshserve rollout`")
    return run_progressive_rollout(name, rollout_policy_from_dict(stored.policy), policy_from_dict(stored.gate),
                                   Load(**stored.load), platform=platform, namespace=namespace, owner=stored.owner,
                                   cluster=cluster, report=report)


def live_guard(target: Platform, policy: RolloutPolicy, namespace: str) -> LiveGuard:
    """The guard over the policy's metrics provider (the platform's own Prometheus when no address is given)."""
    from components.metrics.registry import metrics_provider_for

    address = policy.guard.address or target.metrics_address()
    if not address:
        raise InvalidInputError("rollout_policy.guard.address", "this platform runs no Prometheus of its own",
                                "pass the address of the mesh's Prometheus, e.g. http://prometheus.istio-system:9090")
    return LiveGuard(metrics_provider_for(policy.guard.provider, address), policy.guard, namespace,
                     policy.query_interval)


def step_table(progress: Progress) -> str:
    """Every step as a text table: weight, each guard interval's canary figures, the analysis, the verdict."""
    lines = [f"{'step':>4} {'weight':>6}  {'verdict':12} guard (canary, per interval) | analysis"]
    for step in progress.steps:
        lines.append(f"{step.index + 1:>4} {step.weight:>5}%  {step.verdict or 'running':12} "
                     f"{_readings(step)} | {_analysis(step)}")
        if step.reason:
            lines.append(f"{'':13} why: {step.reason}")
    lines.append(f"phase {progress.phase}: {progress.message}")
    return "\n".join(lines)


def _readings(step: StepRecord) -> str:
    """The step's guard intervals in brief: outcomes, requests per interval, lowest success, highest p99."""
    if not step.guard:
        return "-"
    outcomes = [reading["outcome"] for reading in step.guard]
    told = ", ".join(f"{outcomes.count(kind)} {kind}" for kind in dict.fromkeys(outcomes))
    requests = [reading["requests"] or 0 for reading in step.guard]
    rates = [reading["success_rate"] for reading in step.guard if reading["success_rate"] is not None]
    p99s = [reading["p99_ms"] for reading in step.guard if reading["p99_ms"] is not None]
    lowest = f"{min(rates):.2f}%" if rates else "-"
    highest = f"{max(p99s):.1f} ms" if p99s else "-"
    return (f"{told}; {min(requests):.0f}-{max(requests):.0f} req/interval, success >= {lowest}, "
            f"p99 <= {highest}")


def _analysis(step: StepRecord) -> str:
    analysis = step.analysis
    if not analysis:
        return "-"
    return f"{analysis['decision']} after {analysis['looks']} look(s), {analysis['measured_s']:.0f} s"


def write_progress(progress: Progress, name: str, record: Path, report: Path | None = None) -> None:
    """The progress as JSON and, where asked, the HTML page showing every step."""
    from components.metrics.templates import QueryArguments, render_query
    from components.reports.pages import render_page

    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(progress.to_dict(), indent=1) + "\n")
    if report is None:
        return
    policy = rollout_policy_from_dict(progress.policy)
    readings = [reading for step in progress.steps for reading in step.guard]
    arguments = QueryArguments("NAMESPACE", "WORKLOAD", policy.query_interval)
    queries = readings[-1]["queries"] if readings else {
        query: render_query(policy.guard.query(query), arguments)
        for query in ("request-count", "request-success-rate", "request-duration-p99")}
    report.write_text(render_page("progressive.html.j2", title=f"{name} progressive rollout", name=name,
                                  progress=progress, policy=policy, queries=queries))


def write_outcome(outcome: RolloutOutcome, name: str, progress: Path, report: Path, verdict: Path,
                  results: tuple[Path, Path]) -> None:
    """The step's artifacts: the progress (every step) and its HTML page, and the last analysis's verdict and
    each side's merged result (a note saying so when this driver ran no analysis)."""
    from components.steps.analyze.core import write_analysis

    write_progress(outcome.progress, name, progress, report)
    if outcome.analysis is not None:
        write_analysis(outcome.analysis, verdict, None, results)
        return
    note = {"note": "no analysis ran in this driver (none at its steps, or it ran before a resume)",
            "phase": outcome.progress.phase}
    for path in (verdict, *results):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(note) + "\n")


def rollout_action(progress: Progress) -> str:
    """The gate's word for where the rollout ended: promote, rollback or hold."""
    from components.rollout.progress import HELD, SUCCEEDED

    return "promote" if progress.phase == SUCCEEDED else "hold" if progress.phase == HELD else "rollback"
