"""The verdict for people (Markdown, HTML with a plot of both distributions) and for KFP (metrics)."""

from __future__ import annotations

import numpy as np

from components.gate.decision import INCONCLUSIVE, PROMOTE, ROLLBACK, Verdict
from components.gate.evidence import Evidence
from components.reports.pages import render_page
from components.reports.plots import figure, percentile_axes, png_base64

DECISION_CODES = {PROMOTE: 0.0, ROLLBACK: 1.0, INCONCLUSIVE: 2.0}
_ICONS = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}


def markdown_report(verdict: Verdict) -> str:
    """A table of every check with its value, threshold, interval and reason."""
    lines = [f"## Gate: **{verdict.decision}** (action: {verdict.action})", "", verdict.summary(), ""]
    model = verdict.candidate_model
    if model:
        lines += [f"Candidate model `{model.get('name')}` digest `{str(model.get('model_digest'))[:12]}`, "
                  f"accuracy {model.get('metrics', {}).get('accuracy')}", ""]
    lines += ["| check | result | value | threshold | interval | reason |", "|---|---|---|---|---|---|"]
    for check in verdict.checks:
        interval = f"[{check.interval[0]:.4g}, {check.interval[1]:.4g}]" if check.interval else ""
        needed = f" (needs ≈{check.samples_needed} samples)" if check.samples_needed else ""
        lines.append(f"| {check.name} | {_ICONS[check.status]} | {_fmt(check.value)} | {_fmt(check.threshold)} | "
                     f"{interval} | {check.reason}{needed} |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}"


def html_report(verdict: Verdict, candidate: Evidence | None, baseline: Evidence | None) -> str:
    """The checks as an HTML table, plus both latency distributions on one percentile plot."""
    plot = _distribution_plot(candidate, baseline) if candidate is not None else ""
    return render_page("gate.html.j2", title=f"gate: {verdict.decision}", verdict=verdict, plot_png=plot)


def _distribution_plot(candidate: Evidence, baseline: Evidence | None) -> str:
    shown, axes = figure(8, 4)
    percentiles = 100 * (1 - 10 ** (-np.linspace(0, 4, 200)))
    for evidence, colour in ((baseline, "tab:blue"), (candidate, "tab:orange")):
        if evidence is not None:
            values = np.percentile(evidence.latencies_ms, percentiles)
            axes.plot(1 / (1 - percentiles / 100), values, color=colour, label=f"{evidence.role} (n={evidence.n})")
    percentile_axes(axes, up_to=10000)
    axes.legend()
    axes.grid(True, alpha=0.3)
    return png_base64(shown)


def kfp_metrics(verdict: Verdict) -> dict[str, float]:
    """Decision code (0 promote, 1 rollback, 2 inconclusive), check counts and each check's value."""
    metrics = {"decision_code": DECISION_CODES[verdict.decision], "checks_failed": float(len(verdict.failed())),
               "checks_inconclusive": float(len(verdict.undecided()))}
    for check in verdict.checks:
        if check.value is not None:
            metrics[check.name] = float(check.value)
    return metrics
