"""The analysis trace for people: each latency check's estimate and interval against time, its allowance,
the look where the analysis stopped, then the final verdict's table."""

from __future__ import annotations

import html

from components.analysis.run import Analysis
from components.gate.report import checks_table, png_base64, pyplot

_COLOURS = {"pass": "tab:green", "fail": "tab:red", "inconclusive": "tab:gray"}


def traced_checks(analysis: Analysis) -> list[str]:
    """The checks with an interval at every look (relative and SLO quantiles), in the order first seen."""
    names: list[str] = []
    for look in analysis.looks:
        for check in look.checks:
            if check.interval is not None and check.name.startswith(("relative_", "slo_")) and check.name not in names:
                names.append(check.name)
    return names


def trace_plot(analysis: Analysis) -> str:
    """One panel per traced check: estimate and interval at each look, the allowance, the stopping look."""
    names = traced_checks(analysis)
    if not names:
        return ""
    plt = pyplot()
    figure, axes = plt.subplots(len(names), 1, figsize=(8, 2.3 * len(names)), dpi=90, sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        points = [(look.measured_s, check) for look in analysis.looks for check in look.checks if check.name == name]
        times = [t for t, _ in points]
        estimates = [check.value for _, check in points]
        intervals = [check.interval or (check.value, check.value) for _, check in points]
        axis.fill_between(times, [low for low, _ in intervals],
                          [high for _, high in intervals], color="tab:blue", alpha=0.2,
                          label="interval at the look's alpha")
        axis.plot(times, estimates, color="tab:blue", marker="o", markersize=3, label="estimate")
        for t, check in points:
            axis.plot([t], [check.value], marker="o", markersize=5, color=_COLOURS[check.status])
        threshold = points[-1][1].threshold
        if threshold is not None:
            axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"allowed {threshold:g}")
        if name.startswith("relative_"):
            axis.axhline(1.0, color="black", linewidth=0.6)
        axis.axvline(times[-1], color="black", linestyle=":", linewidth=1)
        axis.set_ylabel(name.replace("relative_", "ratio ").replace("slo_", "ms "))
        axis.grid(True, alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("measured seconds per side (dotted: where the analysis stopped)")
    return png_base64(figure)


def looks_table(analysis: Analysis) -> str:
    """One row per look: time, alpha spent, decision, and each traced check's estimate and interval."""
    names = traced_checks(analysis)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = []
    for look in analysis.looks:
        by_name = {check.name: check for check in look.checks}
        cells = "".join(
            _cell(by_name[name]) if name in by_name else "<td></td>"
            for name in names)
        rows.append(f"<tr><td>{look.index}</td><td>{look.measured_s:.1f}</td><td>{look.alpha:.2e}</td>"
                    f"<td>{look.decision}</td>{cells}</tr>")
    return ("<table border='1' cellpadding='3' style='border-collapse:collapse;font-size:90%'><tr><th>look</th>"
            f"<th>s per side</th><th>alpha spent</th><th>decision</th>{header}</tr>{''.join(rows)}</table>")


def html_trace(analysis: Analysis) -> str:
    """The whole page."""
    verdict = analysis.verdict
    plot = trace_plot(analysis)
    image = f"<img alt='checks against time' src='data:image/png;base64,{plot}'>" if plot else ""
    samples = ", ".join(f"{role} {count}" for role, count in analysis.to_dict()["analysis"]["samples"].items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>analysis: {verdict.decision}</title></head>"
            f"<body style='font-family:sans-serif'><h2>Analysis: {verdict.decision} (action: {verdict.action})</h2>"
            f"<p>{html.escape(verdict.summary())}</p><p>Stopped: {html.escape(analysis.stopped)}; "
            f"{len(analysis.looks)} look(s); samples {samples}.</p>{image}<h3>Final checks</h3>"
            f"{checks_table(verdict)}<h3>Every look</h3>{looks_table(analysis)}</body></html>")


def _cell(check) -> str:
    """A check's estimate, interval and status as a table cell (empty when it has no interval)."""
    if check.interval is None:
        return "<td></td>"
    low, high = check.interval
    return f"<td>{check.value:.3f} [{low:.3f}, {high:.3f}] {check.status}</td>"
