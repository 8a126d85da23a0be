"""The gate step as a Hera script template; test its `decision` output in a `when`."""

from pathlib import Path
from typing import Annotated, Optional

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="gate")
def gate(
    candidate_result: Annotated[Path, Artifact(name="candidate-result", path="/tmp/meshserve/candidate.json")],
    verdict: Annotated[Path, Artifact(name="verdict", output=True)],
    report: Annotated[Path, Artifact(name="report", output=True)],
    decision: Annotated[Path, Parameter(name="decision", output=True)],
    action: Annotated[Path, Parameter(name="action", output=True)],
    baseline_result: Annotated[Optional[Path], Artifact(name="baseline-result",
                                                        path="/tmp/meshserve/baseline.json", optional=True)] = None,
    candidate_manifest: Annotated[Optional[Path], Artifact(name="candidate-manifest",
                                                           path="/tmp/meshserve/candidate-model.json",
                                                           optional=True)] = None,
    baseline_manifest: Annotated[Optional[Path], Artifact(name="baseline-manifest",
                                                          path="/tmp/meshserve/baseline-model.json",
                                                          optional=True)] = None,
    policy: dict = {},  # noqa: B006 (a literal default for the template's input)
) -> None:
    """Decide PROMOTE, ROLLBACK or INCONCLUSIVE from the benchmark results, the models' manifests (accuracy
    checks) and the policy."""
    from components.gate.policy import policy_from_dict
    from components.steps.artifacts import given
    from components.steps.errors import step_errors
    from components.steps.gate.core import run_gate

    with step_errors("gate"):
        outcome = run_gate(candidate_result, given(baseline_result), policy_from_dict(policy),
                           given(candidate_manifest), given(baseline_manifest))
        verdict.write_text(outcome.verdict_json)
        report.write_text(outcome.html)
        decision.write_text(outcome.verdict.decision)
        action.write_text(outcome.verdict.action)
