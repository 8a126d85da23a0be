"""The analyze step as a KFP v2 component: side-by-side windows until the gate can decide; branch on `action`."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def analyze(
    name: str,
    candidate_manifest: Input[Artifact],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
    explanation: Output[Markdown],
    report: Output[HTML],
    candidate_result: Output[Artifact],
    baseline_result: Output[Artifact],
    baseline_manifest: Input[Artifact] = None,
    platform: str = "local",
    namespace: str = "default",
    protocol: str = "",
    sample: str = "",
    payload: str = "",
    qps: float = 500.0,
    budget_s: float = 0.0,
    policy: dict = {},  # noqa: B006 (KFP needs a literal default; sections slo/relative/statistics/analysis)
    owner: str = "",
) -> NamedTuple("AnalyzeOutputs", [("decision", str), ("action", str)]):  # type: ignore[valid-type]  # KFP reads the outputs here
    """Measure the deployed canary and a baseline (a fresh copy of the primary, by default) side by side in
    windows, judging after each, until every check is settled, one fails, or the budget is spent. A first
    deploy is judged on its SLOs alone. `budget_s` (above 0) overrides the policy's analysis.max_duration_s.
    `action` is promote, rollback or hold. `owner` (the run's id) renews the run's lease on the rollout at
    every look."""
    from collections import namedtuple
    from pathlib import Path

    from components.gate.policy import policy_from_dict
    from components.gate.report import kfp_metrics, markdown_report
    from components.steps.analyze.core import Load, run_analysis_on_platform, with_budget, write_analysis
    from components.steps.errors import step_errors
    from components.steps.gate.core import read_model

    with step_errors("analyze"):
        analysis = run_analysis_on_platform(
            name, Load(protocol=protocol, model=name, sample=sample, payload=payload, qps=qps),
            with_budget(policy_from_dict(policy), budget_s), platform=platform, namespace=namespace,
            candidate_model=read_model(Path(candidate_manifest.path)),
            baseline_model=read_model(Path(baseline_manifest.path)) if baseline_manifest is not None else None,
            owner=owner)
        write_analysis(analysis, Path(verdict.path), Path(report.path),
                       (Path(candidate_result.path), Path(baseline_result.path)))
        Path(explanation.path).write_text(markdown_report(analysis.verdict))
        for metric, value in kfp_metrics(analysis.verdict).items():
            metrics.log_metric(metric, value)
        metrics.log_metric("looks", float(len(analysis.looks)))
        decided = analysis.verdict
        verdict.metadata.update({"decision": decided.decision, "action": decided.action, "stopped": analysis.stopped})
        AnalyzeOutputs = namedtuple("AnalyzeOutputs", ["decision", "action"])
        return AnalyzeOutputs(decided.decision, decided.action)
