"""A self-contained HTML report: the summary, a latency-by-percentile plot and a histogram (PNG inline)."""

from __future__ import annotations

import base64
import html
import io

from components.benchmark.histogram import LatencyHistogram
from components.benchmark.reporters.text import text_report


def html_report(result: dict) -> str:
    """The report page, with both plots embedded as data URIs (fits KFP's Output[HTML])."""
    histogram = LatencyHistogram.decode(result["histogram"]["data"])
    title = f"meshserve bench: {result['target']['protocol']} {result['target']['url']}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif'><h2>{html.escape(title)}</h2>"
            f"<pre>{html.escape(text_report(result))}</pre>"
            f"<img alt='latency by percentile' src='data:image/png;base64,{_percentile_plot(histogram)}'>"
            f"<img alt='latency histogram' src='data:image/png;base64,{_histogram_plot(histogram)}'>"
            "</body></html>")


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4), dpi=90)


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _percentile_plot(histogram: LatencyHistogram) -> str:
    """Latency against percentile on a log scale of 1/(1-p), which spreads out the tail."""
    figure, axes = _figure()
    points = histogram.percentile_curve_ms()
    axes.plot([1 / (1 - p / 100) for p, _ in points], [ms for _, ms in points])
    axes.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    axes.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.grid(True, which="major", alpha=0.3)
    return _png(figure)


def _histogram_plot(histogram: LatencyHistogram) -> str:
    """Request counts in 50 equal latency bins up to p99.9 (the rarer tail is in the percentile plot)."""
    import numpy as np

    figure, axes = _figure()
    recorded = [(item.value_iterated_to / 1000, item.count_added_in_this_iter_step)
                for item in histogram.hdr.get_recorded_iterator()]
    if recorded:
        values, counts = np.array(recorded).T
        upper = max(histogram.hdr.get_value_at_percentile(99.9) / 1000, values.min() + 1e-3)
        axes.hist(values, bins=50, range=(values.min(), upper), weights=counts)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("requests")
    return _png(figure)
