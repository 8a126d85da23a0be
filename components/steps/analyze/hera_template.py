"""The analyze step as a Hera script template; test its `action` output in a `when`."""

from pathlib import Path
from typing import Annotated, Optional

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="analyze")
def analyze(
    name: str,
    verdict: Annotated[Path, Artifact(name="verdict", output=True)],
    report: Annotated[Path, Artifact(name="report", output=True)],
    candidate_result: Annotated[Path, Artifact(name="candidate-result", output=True)],
    baseline_result: Annotated[Path, Artifact(name="baseline-result", output=True)],
    decision: Annotated[Path, Parameter(name="decision", output=True)],
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
    payload: str = "",
    qps: float = 500.0,
    budget_s: float = 0.0,
    policy: dict = {},  # noqa: B006 (a literal default for the template's input)
    owner: str = "",
) -> None:
    """Measure the deployed canary and a baseline side by side in windows until the gate can decide
    (`budget_s` above 0 overrides the policy's analysis.max_duration_s; `owner`, the workflow's uid, renews the
    run's lease on the rollout at every look)."""
    from components.gate.policy import policy_from_dict
    from components.steps.analyze.core import Load, run_analysis_on_platform, with_budget, write_analysis
    from components.steps.artifacts import given
    from components.steps.errors import step_errors
    from components.steps.gate.core import read_model

    with step_errors("analyze"):
        analysis = run_analysis_on_platform(
            name, Load(protocol=protocol, model=name, sample=sample, payload=payload, qps=qps),
            with_budget(policy_from_dict(policy), budget_s), platform=platform, namespace=namespace,
            candidate_model=read_model(given(candidate_manifest)), baseline_model=read_model(given(baseline_manifest)),
            owner=owner)
        write_analysis(analysis, verdict, report, (candidate_result, baseline_result))
        decision.write_text(analysis.verdict.decision)
        action.write_text(analysis.verdict.action)
