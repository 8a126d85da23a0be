"""The progressive-rollout step as a Hera script template."""

from pathlib import Path
from typing import Annotated, Optional

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="progressive-rollout")
def progressive_rollout(
    name: str,
    progress: Annotated[Path, Artifact(name="progress", output=True)],
    report: Annotated[Path, Artifact(name="report", output=True)],
    verdict: Annotated[Path, Artifact(name="verdict", output=True)],
    candidate_result: Annotated[Path, Artifact(name="candidate-result", output=True)],
    baseline_result: Annotated[Path, Artifact(name="baseline-result", output=True)],
    phase: Annotated[Path, Parameter(name="phase", output=True)],
    action: Annotated[Path, Parameter(name="action", output=True)],
    candidate_manifest: Annotated[Optional[Path], Artifact(name="candidate-manifest",
                                                           path="/tmp/meshserve/candidate-model.json",
                                                           optional=True)] = None,
    baseline_manifest: Annotated[Optional[Path], Artifact(name="baseline-manifest",
                                                          path="/tmp/meshserve/baseline-model.json",
                                                          optional=True)] = None,
    platform: str = "local",
    namespace: str = "default",
    protocol: str = "",
    sample: str = "",
    qps: float = 500.0,
    budget_s: float = 0.0,
    policy: dict = {},  # noqa: B006 (a literal default for the template's input)
    rollout_policy: dict = {},  # noqa: B006
    owner: str = "",
) -> None:
    """Take the deployed canary through the rollout policy's traffic steps, guarded by live metrics, to promotion
    or rollback (a retried pod resumes where the rollout stood)."""
    from components.steps.artifacts import given
    from components.steps.errors import step_errors
    from components.steps.progressive.core import rollout_action, run_progressive_step, write_outcome

    with step_errors("progressive-rollout"):
        outcome = run_progressive_step(
            name, platform=platform, namespace=namespace, protocol=protocol, sample=sample, qps=qps,
            budget_s=budget_s, policy=policy, rollout_policy=rollout_policy, owner=owner,
            candidate_manifest=given(candidate_manifest), baseline_manifest=given(baseline_manifest))
        write_outcome(outcome, name, progress, report, verdict, (candidate_result, baseline_result))
        phase.write_text(outcome.progress.phase)
        action.write_text(rollout_action(outcome.progress))
