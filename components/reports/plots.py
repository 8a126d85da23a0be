"""The plots the reports embed: matplotlib on the Agg backend, each figure returned as base64 PNG."""

from __future__ import annotations

import base64
import io
from typing import Any

PERCENTILE_TICKS = {1: "0%", 2: "50%", 10: "90%", 100: "99%", 1000: "99.9%", 10000: "99.99%", 100000: "99.999%"}


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(width: float = 7, height: float = 4, rows: int = 1, **options: Any) -> tuple[Any, Any]:
    """A new figure and its axes, at the reports' resolution."""
    return pyplot().subplots(rows, 1, figsize=(width, height), dpi=90, **options)


def png_base64(shown: Any) -> str:
    """A figure as base64 PNG for an <img> data URL; the figure is closed."""
    buffer = io.BytesIO()
    shown.tight_layout()
    shown.savefig(buffer, format="png")
    pyplot().close(shown)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def percentile_axes(axes: Any, up_to: int) -> None:
    """Latency against percentile on a log scale of 1/(1-p), which spreads out the tail, ticked up to `up_to`."""
    axes.set_xscale("log")
    ticks = [tick for tick in PERCENTILE_TICKS if tick <= up_to]
    axes.set_xticks(ticks, [PERCENTILE_TICKS[tick] for tick in ticks])
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
