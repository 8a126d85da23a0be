"""The analysis trace for people: each latency check's estimate and interval against time, its allowance,
the look where the analysis stopped, then the final verdict's table."""

from __future__ import annotations

from components.analysis.run import Analysis
from components.reports.pages import render_page
from components.reports.plots import figure, png_base64

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
    shown, axes = figure(8, 2.3 * len(names), rows=len(names), sharex=True, squeeze=False)
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
    return png_base64(shown)


def html_trace(analysis: Analysis) -> str:
    """The whole page: the trace plot, the final checks, and every look's estimates and intervals."""
    verdict = analysis.verdict
    samples = ", ".join(f"{role} {count}" for role, count in analysis.to_dict()["analysis"]["samples"].items())
    looks = [(look, {check.name: check for check in look.checks}) for look in analysis.looks]
    return render_page("analysis.html.j2", title=f"analysis: {verdict.decision}", verdict=verdict,
                       stopped=analysis.stopped, samples=samples, plot_png=trace_plot(analysis), looks=looks,
                       traced=traced_checks(analysis))
