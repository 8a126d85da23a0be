"""The statistics behind the gate.

Quantiles are order statistics (the smallest value with at least q of the sample at or below it).
Their bootstrap distribution is drawn exactly rather than by resampling: the k-th order statistic
of a resample of n values is at most x(j) with probability P(Binomial(n, j/n) >= k), so B bootstrap
quantiles cost B binary searches instead of B sorts of n values. That makes thousands of resamples
cheap enough to run the gate's power simulation in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval."""

    estimate: float
    low: float
    high: float

    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2


def sample_quantile(sorted_values: np.ndarray, q: float) -> float:
    """The q-quantile of an ascending array, as an order statistic."""
    return float(sorted_values[_rank(sorted_values.size, q) - 1])


def _rank(n: int, q: float) -> int:
    return min(n, max(1, math.ceil(q * n)))


def bootstrap_quantiles(sorted_values: np.ndarray, q: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` draws from the exact bootstrap distribution of the sample q-quantile."""
    from scipy.stats import binom

    n = sorted_values.size
    k = _rank(n, q)
    cdf = binom.sf(k - 1, n, np.arange(1, n + 1) / n)  # P(k-th order statistic of a resample <= x(j))
    indices = np.searchsorted(cdf, rng.random(resamples), side="left")
    return sorted_values[np.minimum(indices, n - 1)]


def quantile_interval(sorted_values: np.ndarray, q: float, confidence: float, resamples: int,
                      rng: np.random.Generator) -> Interval:
    """Percentile-bootstrap interval for one sample's q-quantile."""
    draws = bootstrap_quantiles(sorted_values, q, resamples, rng)
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(sample_quantile(sorted_values, q), float(low), float(high))


def ratio_interval(candidate: np.ndarray, baseline: np.ndarray, q: float, confidence: float, resamples: int,
                   rng: np.random.Generator) -> Interval:
    """Percentile-bootstrap interval for candidate q-quantile / baseline q-quantile (independent samples)."""
    ratios = (bootstrap_quantiles(candidate, q, resamples, rng) /
              np.maximum(bootstrap_quantiles(baseline, q, resamples, rng), 1e-12))
    low, high = np.quantile(ratios, [(1 - confidence) / 2, (1 + confidence) / 2])
    estimate = sample_quantile(candidate, q) / max(sample_quantile(baseline, q), 1e-12)
    return Interval(estimate, float(low), float(high))


def window_draws(windows: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of `windows` time windows is drawn into each resample (resamples x windows)."""
    picks = rng.integers(0, windows, size=(resamples, windows))
    counts = np.zeros((resamples, windows), dtype=np.int32)
    np.add.at(counts, (np.arange(resamples)[:, None], picks), 1)
    return counts


def block_quantiles(in_order: np.ndarray, q: float, draws: np.ndarray) -> np.ndarray:
    """The q-quantile of each block-bootstrap resample: the requests, in time order, cut into as many equal
    windows as `draws` has columns, each resample made of whole windows drawn `draws[r]` times."""
    windows = draws.shape[1]
    window_of = np.repeat(np.arange(windows), [part.size for part in np.array_split(in_order, windows)])
    order = np.argsort(in_order, kind="stable")
    sorted_values, sorted_windows = in_order[order], window_of[order]
    quantiles = np.empty(draws.shape[0])
    for start in range(0, draws.shape[0], 256):  # bounded memory: 256 x n weights at a time
        cumulative = np.cumsum(draws[start:start + 256][:, sorted_windows], axis=1)
        ranks = np.maximum(1, np.ceil(q * cumulative[:, -1]))
        first = (cumulative < ranks[:, None]).sum(axis=1)
        quantiles[start:start + 256] = sorted_values[np.minimum(first, in_order.size - 1)]
    return quantiles


def block_quantile_interval(in_order: np.ndarray, q: float, confidence: float, draws: np.ndarray) -> Interval:
    """Percentile interval for one sample's q-quantile, resampling whole time windows."""
    low, high = np.quantile(block_quantiles(in_order, q, draws), [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(sample_quantile(np.sort(in_order), q), float(low), float(high))


def block_ratio_interval(candidate_in_order: np.ndarray, baseline_in_order: np.ndarray, q: float,
                         confidence: float, draws: np.ndarray) -> Interval:
    """Percentile interval for candidate q-quantile / baseline q-quantile, measured side by side: each resample
    draws the same time windows from both, so noise shared in time cancels and noise correlated in time
    widens the interval as it should (requests within a window are not independent)."""
    ratios = block_quantiles(candidate_in_order, q, draws) / np.maximum(block_quantiles(baseline_in_order, q, draws),
                                                                        1e-12)
    low, high = np.quantile(ratios, [(1 - confidence) / 2, (1 + confidence) / 2])
    estimate = sample_quantile(np.sort(candidate_in_order), q) / max(sample_quantile(np.sort(baseline_in_order), q),
                                                                     1e-12)
    return Interval(estimate, float(low), float(high))


def with_instance_noise(interval: Interval, noise_pct: float, confidence: float) -> Interval:
    """A ratio's interval widened for two instances' own offsets (one standard deviation `noise_pct` each),
    added to the interval's half-widths in quadrature, in log space."""
    from scipy.stats import norm

    if noise_pct <= 0:
        return interval
    spread = norm.ppf((1 + confidence) / 2) * math.sqrt(2) * math.log1p(noise_pct / 100)
    below = math.hypot(math.log(interval.estimate / interval.low), spread)
    above = math.hypot(math.log(interval.high / interval.estimate), spread)
    return Interval(interval.estimate, interval.estimate * math.exp(-below), interval.estimate * math.exp(above))


def mann_whitney_greater(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """One-sided Mann–Whitney U p-value for 'candidate latencies tend to be larger'."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(candidate, baseline, alternative="greater", method="asymptotic").pvalue)


def spread_test(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """Brown–Forsythe p-value for unequal spread of log-latencies (robust to the skew of latencies)."""
    from scipy.stats import levene

    return float(levene(np.log(candidate), np.log(baseline), center="median").pvalue)


def tail_ratio(sorted_values: np.ndarray) -> float:
    """p99 / p50: how heavy the tail is relative to the body."""
    return sample_quantile(sorted_values, 0.99) / max(sample_quantile(sorted_values, 0.50), 1e-12)


def samples_needed(n: int, interval: Interval, margin: float, cap: int = 10_000_000) -> int:
    """Samples per side for the interval to shrink to `margin` (half-width falls as 1/sqrt(n))."""
    if margin <= 0:
        return cap
    return min(cap, math.ceil(n * (interval.half_width() / margin) ** 2))
