"""The gate step as a KFP v2 component; branch on its `decision` (or `action`) output with dsl.If."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def gate(
    candidate_result: Input[Artifact],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
    explanation: Output[Markdown],
    report: Output[HTML],
    baseline_result: Input[Artifact] = None,
    candidate_manifest: Input[Artifact] = None,
    baseline_manifest: Input[Artifact] = None,
    policy: dict = {},  # noqa: B006 (KFP needs a literal default; sections slo/relative/statistics)
) -> NamedTuple("GateOutputs", [("decision", str), ("action", str)]):  # type: ignore[valid-type]  # KFP reads the outputs here
    """Decide PROMOTE, ROLLBACK or INCONCLUSIVE; `action` is promote, rollback or hold."""
    from collections import namedtuple
    from pathlib import Path

    from components.gate.policy import policy_from_dict
    from components.gate.report import kfp_metrics
    from components.steps.errors import step_errors
    from components.steps.gate.core import run_gate

    with step_errors("gate"):
        def path_of(artifact):
            return Path(artifact.path) if artifact is not None else None

        outcome = run_gate(Path(candidate_result.path), path_of(baseline_result), policy_from_dict(policy),
                           path_of(candidate_manifest), path_of(baseline_manifest))
        Path(verdict.path).write_text(outcome.verdict_json)
        Path(explanation.path).write_text(outcome.markdown)
        Path(report.path).write_text(outcome.html)
        for name, value in kfp_metrics(outcome.verdict).items():
            metrics.log_metric(name, value)
        verdict.metadata.update({"decision": outcome.verdict.decision, "action": outcome.verdict.action})
        GateOutputs = namedtuple("GateOutputs", ["decision", "action"])
        return GateOutputs(outcome.verdict.decision, outcome.verdict.action)
