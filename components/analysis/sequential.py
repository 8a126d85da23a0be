"""Statistics that stay valid when the analysis looks after every window (continuous monitoring).

A look at cumulative data is a test; looking again and stopping at the first "significant" look
inflates the error rate unless each look spends only part of it. The analysis plans `K` looks over its
budget and spends alpha with a Lan–DeMets spending function A(t) of the information fraction t (the
share of the budget measured): look k spends A(t_k) - A(t_{k-1}). By the union bound the chance of any
false decision over all looks stays at or below alpha, however the looks are correlated.

Instance noise (two instances' persistent offsets) is one draw per analysis, not a new one per look:
so it needs no share of the sequential spending. A relative check splits its alpha: half for the
offset (one normal quantile), half spent over the looks for the sampling error, and its half-width is
the sum of the two parts. The chance that either part is exceeded is at most the sum of the two halves.

Each quantile is estimated as an order statistic, and its uncertainty comes from its linearization
(the Bahadur representation): ln x_q moves by -(F(x_q) - q) * d ln x / dF. The proportion at or below
the estimate is taken per time block, so noise correlated in time is in the variance (batch means),
and the candidate's and baseline's blocks are paired: both sides are loaded at the same moments, so
what the machine does in a block moves both, and cancels in the ratio. d ln x / dF is the empirical
quantile function's slope over a Hall–Sheather bandwidth. One look costs a sort and a few passes over
the samples: milliseconds for 30,000 per side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from components.gate.statistics import sample_quantile as order_statistic


def spent(fraction: float, alpha: float, spending: str) -> float:
    """Alpha spent up to information fraction `fraction` (0..1) by the Lan–DeMets spending function."""
    from scipy.stats import norm

    t = min(1.0, max(0.0, fraction))
    if t == 0:
        return 0.0
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1) * t)
    if spending == "obrien-fleming":
        return float(2 * (1 - norm.cdf(norm.ppf(1 - alpha / 2) / math.sqrt(t))))
    raise ValueError(f"unknown spending function {spending!r}")


def look_alpha(fraction: float, previous_fraction: float, alpha: float, spending: str) -> float:
    """The alpha this look may spend (one-sided): what the spending function adds since the last look."""
    return max(spent(fraction, alpha, spending) - spent(previous_fraction, alpha, spending), 1e-12)


def normal_critical(alpha: float) -> float:
    """One-sided standard normal critical value."""
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha))


def critical_value(look_alpha_: float, blocks: int) -> float:
    """One-sided critical value for a batch-means estimate from `blocks` blocks (Student t, blocks - 1 df)."""
    from scipy.stats import t as student

    return float(student.ppf(1 - look_alpha_, max(blocks - 1, 1)))


@dataclass(frozen=True)
class LogEstimate:
    """A log-scale estimate with its sampling and instance standard errors."""

    log_value: float
    sampling_se: float
    instance_se: float = 0.0

    def half_width(self, sampling_critical: float, instance_critical: float = 0.0) -> float:
        """The log-scale half-width: each part at its own critical value, added (a union bound)."""
        return sampling_critical * self.sampling_se + instance_critical * self.instance_se

    def bounds(self, sampling_critical: float, instance_critical: float = 0.0) -> tuple[float, float]:
        """(low, high) on the natural scale."""
        half = self.half_width(sampling_critical, instance_critical)
        return math.exp(self.log_value - half), math.exp(self.log_value + half)

    @property
    def value(self) -> float:
        """The estimate on the natural scale."""
        return math.exp(self.log_value)


@dataclass(frozen=True)
class BlockedSample:
    """One side's latencies so far, as time blocks (block i of both sides covers the same moments)."""

    blocks: tuple[np.ndarray, ...]

    def __post_init__(self):
        object.__setattr__(self, "_sorted", np.sort(np.concatenate(self.blocks)) if self.blocks else np.empty(0))

    @property
    def sorted(self) -> np.ndarray:
        """Every latency, ascending."""
        return self._sorted  # type: ignore[attr-defined]

    @property
    def n(self) -> int:
        """How many latencies."""
        return int(self.sorted.size)


def hall_sheather(n: int, q: float, alpha: float = 0.05) -> float:
    """Hall and Sheather's bandwidth for the quantile function's slope at q."""
    from scipy.stats import norm

    x = norm.ppf(q)
    return n ** (-1 / 3) * norm.ppf(1 - alpha / 2) ** (2 / 3) * (1.5 * norm.pdf(x) ** 2 / (2 * x * x + 1)) ** (1 / 3)


def _log_slope(sorted_values: np.ndarray, q: float) -> float:
    """d ln x / dF at q: the empirical log-quantile function's slope over the Hall–Sheather bandwidth."""
    n = sorted_values.size
    h = max(hall_sheather(n, q), 2.0 / n)
    low, high = max(q - h, 1.0 / n), min(q + h, 1.0 - 1.0 / n)
    if high <= low:
        return 0.0
    rise = math.log(max(order_statistic(sorted_values, high), 1e-9)) - math.log(max(order_statistic(sorted_values,
                                                                                                     low), 1e-9))
    # Latencies are whole microseconds: a flat stretch still hides at least one microsecond of spread.
    floor = math.log1p(1e-3 / max(order_statistic(sorted_values, q), 1e-9))
    return max(rise, floor) / (high - low)


def _influence(sample: BlockedSample, q: float) -> tuple[float, np.ndarray]:
    """ln of the q-quantile, and each block's contribution to its error (linearized, weighted by size)."""
    estimate = order_statistic(sample.sorted, q)
    slope = _log_slope(sample.sorted, q)
    n = sample.n
    below = np.array([np.count_nonzero(block <= estimate) for block in sample.blocks], dtype=np.float64)
    sizes = np.array([block.size for block in sample.blocks], dtype=np.float64)
    pooled = below.sum() / n
    # F̂(x) - q = Σ_b (below_b - pooled·size_b) / n; ln x̂ moves by -slope times that.
    return math.log(max(estimate, 1e-9)), -slope * (below - pooled * sizes) / n


def _batch_se(contributions: np.ndarray) -> float:
    m = contributions.size
    return math.sqrt(m / max(m - 1, 1) * float(np.sum(contributions ** 2)))


def quantile_estimate(sample: BlockedSample, q: float, instance_se: float = 0.0) -> LogEstimate:
    """ln of one side's q-quantile, its batch-means standard error, and the instance noise it carries."""
    log_value, contributions = _influence(sample, q)
    return LogEstimate(log_value, _batch_se(contributions), instance_se)


def ratio_estimate(candidate: BlockedSample, baseline: BlockedSample, q: float,
                   instance_se: float = 0.0) -> LogEstimate:
    """ln(candidate q-quantile / baseline q-quantile), with the paired batch-means standard error.

    Blocks are paired by index (the same moments on both sides); with unequal block counts only the
    common ones pair, and the rest count on their own side alone.
    """
    log_c, contrib_c = _influence(candidate, q)
    log_b, contrib_b = _influence(baseline, q)
    paired = min(contrib_c.size, contrib_b.size)
    differences = np.concatenate([contrib_c[:paired] - contrib_b[:paired], contrib_c[paired:], -contrib_b[paired:]])
    return LogEstimate(log_c - log_b, _batch_se(differences), instance_se)


def instance_se(noise_pct: float, instances_per_side: int, sides: int = 2) -> float:
    """Log-scale standard error from the instances' own persistent offsets (one SD `noise_pct` per instance),
    averaged over the instances of each side, for `sides` sides (2 for a ratio)."""
    per_instance = math.log1p(max(noise_pct, 0.0) / 100)
    return per_instance * math.sqrt(sides / max(instances_per_side, 1))


def error_rate_bounds(errors: int, total: int, look_alpha_: float) -> tuple[float, float]:
    """One-sided Clopper–Pearson bounds on the error rate, each at level `look_alpha_`."""
    from scipy.stats import beta

    if total <= 0:
        return 0.0, 1.0
    low = 0.0 if errors == 0 else float(beta.ppf(look_alpha_, errors, total - errors + 1))
    high = 1.0 if errors == total else float(beta.ppf(1 - look_alpha_, errors + 1, total - errors))
    return low, high
