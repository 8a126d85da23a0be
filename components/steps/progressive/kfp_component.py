"""The progressive-rollout step as a KFP v2 component: it drives the canary through the rollout policy's steps."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def progressive_rollout(
    name: str,
    candidate_manifest: Input[Artifact],
    progress: Output[Artifact],
    report: Output[HTML],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
    candidate_result: Output[Artifact],
    baseline_result: Output[Artifact],
    baseline_manifest: Input[Artifact] = None,
    platform: str = "local",
    namespace: str = "default",
    protocol: str = "",
    sample: str = "",
    qps: float = 500.0,
    budget_s: float = 0.0,
    policy: dict = {},  # noqa: B006 (KFP needs a literal default; the gate's policy for the step analyses)
    rollout_policy: dict = {},  # noqa: B006 (steps, interval_s, guard, hooks, ...; {} keeps the defaults)
    owner: str = "",
) -> NamedTuple("RolloutOutputs", [("phase", str), ("action", str)]):  # type: ignore[valid-type]  # KFP reads the outputs here
    """Take the deployed canary through the rollout policy's traffic steps: at each, the router sets the weight,
    the live guard reads real traffic every interval, the side-by-side analysis runs where the policy asks;
    any failure rolls back at once, and after the last step (and the confirm-promotion gates) it is promoted.
    A retried task resumes the rollout where it stood. `phase` is Succeeded, Failed or Held."""
    from collections import namedtuple
    from pathlib import Path

    from components.steps.errors import step_errors
    from components.steps.progressive.core import rollout_action, run_progressive_step, write_outcome

    with step_errors("progressive-rollout"):
        outcome = run_progressive_step(
            name, platform=platform, namespace=namespace, protocol=protocol, sample=sample, qps=qps,
            budget_s=budget_s, policy=policy, rollout_policy=rollout_policy, owner=owner,
            candidate_manifest=Path(candidate_manifest.path),
            baseline_manifest=Path(baseline_manifest.path) if baseline_manifest is not None else None)
        write_outcome(outcome, name, Path(progress.path), Path(report.path), Path(verdict.path),
                      (Path(candidate_result.path), Path(baseline_result.path)))
        done = outcome.progress
        metrics.log_metric("steps_passed", float(sum(step.verdict == "pass" for step in done.steps)))
        metrics.log_metric("final_weight", float(done.weight))
        progress.metadata.update({"phase": done.phase, "message": done.message})
        RolloutOutputs = namedtuple("RolloutOutputs", ["phase", "action"])
        return RolloutOutputs(done.phase, rollout_action(done))
