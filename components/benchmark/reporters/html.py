"""A self-contained HTML report: the summary, a latency-by-percentile plot and a histogram (PNG inline)."""

from __future__ import annotations

from components.benchmark.histogram import LatencyHistogram
from components.benchmark.reporters.text import text_report
from components.reports.pages import render_page
from components.reports.plots import figure, percentile_axes, png_base64


def html_report(result: dict) -> str:
    """The report page, with both plots embedded as data URIs (fits KFP's Output[HTML])."""
    histogram = LatencyHistogram.decode(result["histogram"]["data"])
    return render_page("benchmark.html.j2", title=f"meshserve bench: {result['target']['protocol']} "
                       f"{result['target']['url']}", text=text_report(result),
                       percentile_png=_percentile_plot(histogram), histogram_png=_histogram_plot(histogram))


def _percentile_plot(histogram: LatencyHistogram) -> str:
    """Latency against percentile, the tail spread out."""
    shown, axes = figure()
    points = histogram.percentile_curve_ms()
    axes.plot([1 / (1 - p / 100) for p, _ in points], [ms for _, ms in points])
    percentile_axes(axes, up_to=100000)
    axes.grid(True, which="major", alpha=0.3)
    return png_base64(shown)


def _histogram_plot(histogram: LatencyHistogram) -> str:
    """Request counts in 50 equal latency bins up to p99.9 (the rarer tail is in the percentile plot)."""
    import numpy as np

    shown, axes = figure()
    recorded = [(item.value_iterated_to / 1000, item.count_added_in_this_iter_step)
                for item in histogram.hdr.get_recorded_iterator()]
    if recorded:
        values, counts = np.array(recorded).T
        upper = max(histogram.hdr.get_value_at_percentile(99.9) / 1000, values.min() + 1e-3)
        axes.hist(values, bins=50, range=(values.min(), upper), weights=counts)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("requests")
    return png_base64(shown)
