"""Instance noise from A/A runs: how much two fresh instances serving the same model differ, persistently.

Each A/A run measures two fresh instances of one model side by side and gives, per quantile, the log
ratio and its sampling standard error (batch means). Across runs, the ratio varies by the sampling
error plus both instances' own offsets; so one instance's offset has variance
(var(log ratio across runs) - mean(sampling se²)) / 2, floored at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from components.analysis import sequential as sq
from components.analysis.looks import Side
from components.gate.checks import QUANTILES


@dataclass(frozen=True)
class PairEstimate:
    """One A/A run's log ratio per quantile and its sampling standard error."""

    log_ratio: dict[str, float]
    sampling_se: dict[str, float]


def pair_estimate(candidate: Side, baseline: Side) -> PairEstimate:
    """The log ratios (candidate / baseline) of p50, p90 and p99 with their paired batch-means errors."""
    estimates = {label: sq.ratio_estimate(candidate.sample(), baseline.sample(), q) for label, q in QUANTILES.items()}
    return PairEstimate({label: e.log_value for label, e in estimates.items()},
                        {label: e.sampling_se for label, e in estimates.items()})


def instance_noise_pct(pairs: list[PairEstimate]) -> dict[str, float]:
    """One instance's standard deviation per quantile, in percent (needs at least 3 runs)."""
    if len(pairs) < 3:
        raise ValueError("instance noise needs at least 3 A/A runs")
    noise = {}
    for label in QUANTILES:
        ratios = np.array([pair.log_ratio[label] for pair in pairs])
        sampling = np.mean([pair.sampling_se[label] ** 2 for pair in pairs])
        per_instance = max(0.0, (float(np.var(ratios, ddof=1)) - float(sampling)) / 2)
        noise[label] = round(100 * math.expm1(math.sqrt(per_instance)), 2)
    return noise
