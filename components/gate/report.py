"""The verdict for people (Markdown, HTML with a plot of both distributions) and for KFP (metrics)."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from components.gate.decision import INCONCLUSIVE, PROMOTE, ROLLBACK, Verdict
from components.gate.evidence import Evidence

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
    """The Markdown table as HTML, plus both latency distributions on one percentile plot."""
    plot = _distribution_plot(candidate, baseline) if candidate is not None else ""
    image = f"<img alt='latency distributions' src='data:image/png;base64,{plot}'>" if plot else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>gate: {verdict.decision}</title></head>"
            f"<body style='font-family:sans-serif'><h2>Gate: {verdict.decision} (action: {verdict.action})</h2>"
            f"<p>{html.escape(verdict.summary())}</p>{checks_table(verdict)}{image}</body></html>")


def checks_table(verdict: Verdict) -> str:
    """Every check of the verdict as an HTML table: result, value, threshold, interval and reason."""
    rows = "".join(
        f"<tr><td>{html.escape(k.name)}</td><td>{_ICONS[k.status]}</td><td>{_fmt(k.value)}</td>"
        f"<td>{_fmt(k.threshold)}</td><td>{'' if not k.interval else f'[{k.interval[0]:.4g}, {k.interval[1]:.4g}]'}"
        f"</td><td>{html.escape(k.reason)}</td></tr>" for k in verdict.checks)
    return ("<table border='1' cellpadding='4' style='border-collapse:collapse'><tr><th>check</th><th>result</th>"
            f"<th>value</th><th>threshold</th><th>interval</th><th>reason</th></tr>{rows}</table>")


def _distribution_plot(candidate: Evidence, baseline: Evidence | None) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 4), dpi=90)
    percentiles = 100 * (1 - 10 ** (-np.linspace(0, 4, 200)))
    for evidence, colour in ((baseline, "tab:blue"), (candidate, "tab:orange")):
        if evidence is not None:
            values = np.percentile(evidence.latencies_ms, percentiles)
            axes.plot(1 / (1 - percentiles / 100), values, color=colour, label=f"{evidence.role} (n={evidence.n})")
    axes.set_xscale("log")
    axes.set_xticks([1, 2, 10, 100, 1000, 10000], ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.legend()
    axes.grid(True, alpha=0.3)
    return png_base64(figure)


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_base64(figure) -> str:
    """A figure as base64 PNG for an <img> data URL; the figure is closed."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def kfp_metrics(verdict: Verdict) -> dict[str, float]:
    """Decision code (0 promote, 1 rollback, 2 inconclusive), check counts and each check's value."""
    metrics = {"decision_code": DECISION_CODES[verdict.decision], "checks_failed": float(len(verdict.failed())),
               "checks_inconclusive": float(len(verdict.undecided()))}
    for check in verdict.checks:
        if check.value is not None:
            metrics[check.name] = float(check.value)
    return metrics
