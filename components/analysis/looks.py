"""One look of the sequential analysis: every check on the data so far, at this look's share of alpha.

Each check has three outcomes, decided by two one-sided tests at the look's critical value:
- relative quantile (candidate / baseline): fail when the ratio is beyond the allowance and
  significantly above 1; pass when the whole interval is within the allowance;
- absolute SLO quantile: pass when the interval is under the limit, fail when it is above;
- success ratio: fail when the error rate is significantly above the allowed rate, pass when it is
  significantly at or below it (Clopper–Pearson);
- achieved rate: every window delivered the requested load (a measurement that did not is invalid);
- sample size: at least the policy's minimum.
The baseline's success ratio and achieved rate are inconclusive where they would fail: a baseline that errs is
no evidence against the candidate. A window in which the baseline alone failed is set aside whole
(`baseline_failure`), on both sides, so the pair stays paired.
An undecided check says what would settle it, and whether instance noise (which no amount of time
shrinks) is what keeps it open.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from components.analysis import sequential as sq
from components.gate.checks import FAIL, INCONCLUSIVE, PASS, QUANTILES, Check, as_reference
from components.gate.policy import GatePolicy


@dataclass
class Side:
    """One side's measurement so far: latencies in time blocks, counts, and each window's delivered rate."""

    role: str
    blocks: list[np.ndarray] = field(default_factory=list)
    total: int = 0
    errors: Counter = field(default_factory=Counter)
    windows: list[tuple[float | None, float]] = field(default_factory=list)  # (requested, achieved) qps
    measured_seconds: float = 0.0

    def add_window(self, document: dict, blocks_per_window: int) -> None:
        """Add one window's result document (it must keep its samples, in completion order)."""
        samples = np.asarray(document.get("samples_us", []), dtype=np.float64) / 1000.0
        if samples.size:
            self.blocks += [part for part in np.array_split(samples, min(blocks_per_window, samples.size))]
        self.total += int(document["counts"]["total"])
        self.errors.update(document["counts"]["by_error"])
        self.windows.append((document["requested_qps"], float(document["achieved_qps"])))
        self.measured_seconds += float(document["measured_seconds"])

    @property
    def error_count(self) -> int:
        """Failed requests so far."""
        return sum(self.errors.values())

    def sample(self) -> sq.BlockedSample:
        """The latencies, blocked, for the estimators."""
        return sq.BlockedSample(tuple(self.blocks))


@dataclass(frozen=True)
class LookPlan:
    """Where this look stands in the plan: its information fraction, the alpha it may spend on sampling
    error, and the alpha a relative check keeps for instance noise (spent once, not per look)."""

    index: int
    fraction: float
    alpha: float
    instance_alpha: float

    @classmethod
    def at(cls, index: int, elapsed_s: float, previous_s: float, policy: GatePolicy) -> LookPlan:
        """The plan for look `index` after `elapsed_s` measured seconds (the previous look at `previous_s`)."""
        budget = policy.analysis.max_duration_s
        alpha = 1 - policy.statistics.confidence
        fraction = 1.0 if elapsed_s >= budget - 1e-6 else elapsed_s / budget
        return cls(index, fraction, sq.look_alpha(fraction, min(previous_s / budget, 1.0), alpha,
                                                  policy.analysis.spending), alpha)

    def split(self) -> tuple[float, float]:
        """(sampling alpha, instance alpha) for a check that carries instance noise: half of each."""
        return self.alpha / 2, self.instance_alpha / 2



def look_checks(candidate: Side, baseline: Side | None, policy: GatePolicy, plan: LookPlan,
                instances: int = 1) -> list[Check]:
    """Every measured check at this look (the accuracy checks are the gate's, decided once)."""
    checks = []
    for side in (candidate, baseline):
        if side is not None:
            measurement = [success_ratio(side, policy.slo.min_success_ratio, plan.alpha),
                           achieved_rate(side, policy.slo.min_achieved_ratio)]
            checks += [sample_size(side, policy.statistics.min_samples),
                       *(measurement if side is candidate else map(as_reference, measurement))]
    sample = candidate.sample()
    if sample.n == 0:
        return checks
    limits = {"p50": policy.slo.max_p50_ms, "p90": policy.slo.max_p90_ms, "p99": policy.slo.max_p99_ms}
    for label, limit in limits.items():
        if limit is not None:
            checks.append(slo_quantile(sample, label, limit, plan.alpha))
    reference = baseline.sample() if baseline is not None else None
    if reference is None or reference.n == 0:
        return checks
    relative = policy.relative
    allowances = {"p50": relative.max_p50_increase_pct, "p90": relative.max_p90_increase_pct,
                  "p99": relative.max_p99_increase_pct}
    for label, allowance in allowances.items():
        if allowance is not None:
            checks.append(relative_quantile(sample, reference, label, allowance, plan,
                                            policy.statistics.instance_noise_for(label), instances))
    return checks


def baseline_failure(index: int, candidate: dict, baseline: dict, policy: GatePolicy, alpha: float) -> str:
    """Why window `index` says nothing of the candidate ("" when it stands): the baseline failed in it (errors
    significantly above the allowed rate, or short of the load) while the candidate did not. Kept, such a window
    would blame the candidate for the baseline's outage (or flatter it, by the baseline's latencies)."""
    def failed(role: str, document: dict) -> bool:
        side = Side(role)
        side.add_window(document, 1)
        return FAIL in (success_ratio(side, policy.slo.min_success_ratio, alpha).status,
                        achieved_rate(side, policy.slo.min_achieved_ratio).status)

    if not failed("baseline", baseline) or failed("candidate", candidate):
        return ""
    return (f"window {index} set aside: the baseline answered {_answered(baseline)}, the candidate "
            f"{_answered(candidate)}: the baseline stopped serving, which says nothing of the candidate")


def _answered(document: dict) -> str:
    counts = document["counts"]
    errors = ", ".join(f"{kind} {count}" for kind, count in sorted(counts["by_error"].items()))
    answered = counts["total"] - sum(counts["by_error"].values())
    return (f"{answered} of {counts['total']} requests at {float(document['achieved_qps']):.0f} qps"
            + (f" ({errors})" if errors else ""))


def sample_size(side: Side, minimum: int) -> Check:
    """Enough measured requests to judge?"""
    name = f"{side.role}_samples"
    if side.total < minimum:
        return Check(name, INCONCLUSIVE, side.total, minimum, f"{side.total} requests measured, the policy needs "
                     f"{minimum}", samples_needed=minimum)
    return Check(name, PASS, side.total, minimum, f"{side.total} requests measured (≥ {minimum})")


def success_ratio(side: Side, minimum: float, alpha: float) -> Check:
    """The error rate against the allowed rate, by one-sided Clopper–Pearson bounds at this look's alpha."""
    allowed = 1 - minimum
    errors, total = side.error_count, side.total
    low, high = sq.error_rate_bounds(errors, total, alpha)
    ratio = 1 - errors / total if total else 0.0
    detail = ", ".join(f"{kind} {count}" for kind, count in sorted(side.errors.items())) or "no errors"
    text = (f"success {ratio:.4%}, error rate [{low:.4%}, {high:.4%}] vs allowed {allowed:.4%} ({detail})")
    name = f"{side.role}_success_ratio"
    bounds = (1 - high, 1 - low)
    if low > allowed:
        return Check(name, FAIL, ratio, minimum, text + ": significantly more errors than allowed", bounds)
    if high <= allowed:
        return Check(name, PASS, ratio, minimum, text, bounds)
    needed = math.ceil(-math.log(alpha) / allowed) if errors == 0 and allowed > 0 else None
    return Check(name, INCONCLUSIVE, ratio, minimum, text + ": too few requests to call", bounds, needed)


def achieved_rate(side: Side, min_ratio: float) -> Check:
    """Did every window deliver the load it asked for? A window that did not makes the measurement invalid."""
    name = f"{side.role}_achieved_rate"
    for index, (requested, achieved) in enumerate(side.windows):
        if requested is not None and achieved < requested * min_ratio:
            return Check(name, FAIL, achieved, requested * min_ratio,
                         f"window {index + 1} achieved {achieved:.1f} qps of {requested:.1f} requested: "
                         "the measurement is not valid")
    rates = [achieved for _, achieved in side.windows]
    low = min(rates) if rates else 0.0
    return Check(name, PASS, low, None, f"every window delivered its load (lowest {low:.1f} qps)")


def slo_quantile(sample: sq.BlockedSample, label: str, limit_ms: float, alpha: float) -> Check:
    """The candidate's quantile against an absolute limit."""
    estimate = sq.quantile_estimate(sample, QUANTILES[label])
    critical = sq.critical_value(alpha, len(sample.blocks))
    low, high = estimate.bounds(critical)
    text = f"{label} {estimate.value:.3f} ms [{low:.3f}, {high:.3f}] vs limit {limit_ms} ms"
    name = f"slo_{label}"
    if high <= limit_ms:
        return Check(name, PASS, estimate.value, limit_ms, text, (low, high))
    if low > limit_ms:
        return Check(name, FAIL, estimate.value, limit_ms, text + ": over the limit", (low, high))
    margin = abs(math.log(limit_ms) - estimate.log_value)
    return Check(name, INCONCLUSIVE, estimate.value, limit_ms, text + ": too close to call", (low, high),
                 _samples_needed(sample.n, critical * estimate.sampling_se, 0.0, margin))


def relative_quantile(candidate: sq.BlockedSample, baseline: sq.BlockedSample, label: str, allowance_pct: float,
                      plan: LookPlan, noise_pct: float, instances: int) -> Check:
    """Candidate/baseline ratio of a quantile against the allowed increase."""
    estimate = sq.ratio_estimate(candidate, baseline, QUANTILES[label], sq.instance_se(noise_pct, instances))
    sampling_alpha, instance_alpha = plan.split() if estimate.instance_se > 0 else (plan.alpha, 0.0)
    critical = sq.critical_value(sampling_alpha, min(len(candidate.blocks), len(baseline.blocks)))
    instance_critical = sq.normal_critical(instance_alpha) if instance_alpha else 0.0
    low, high = estimate.bounds(critical, instance_critical)
    instance_part = instance_critical * estimate.instance_se
    limit = 1 + allowance_pct / 100
    text = f"{label} ratio {estimate.value:.3f} [{low:.3f}, {high:.3f}] vs allowed {limit:.3f}"
    name = f"relative_{label}"
    if estimate.value > limit and low > 1:
        return Check(name, FAIL, estimate.value, limit, text + ": a significant regression", (low, high))
    if high <= limit:
        return Check(name, PASS, estimate.value, limit, text, (low, high))
    margin = math.log(limit) - estimate.log_value if estimate.value <= limit else estimate.log_value
    n = min(candidate.n, baseline.n)
    if margin <= instance_part:
        wanted = math.ceil(instances * (instance_part / max(margin, 1e-9)) ** 2 * 1.5)
        reason = (f": instance noise ({noise_pct:g}% per instance, {instances} per side) limits it, not the "
                  f"sample size; measure over more instances (≈{wanted} replicas per side), not for longer")
        return Check(name, INCONCLUSIVE, estimate.value, limit, text + reason, (low, high))
    return Check(name, INCONCLUSIVE, estimate.value, limit, text + ": too noisy to call", (low, high),
                 _samples_needed(n, critical * estimate.sampling_se, instance_part, margin))


def _samples_needed(n: int, sampling_part: float, instance_part: float, margin: float, cap: int = 10_000_000) -> int:
    """Samples per side for the sampling part of the half-width to fit in what the margin leaves (it shrinks as
    1/sqrt(n); the instance part does not)."""
    room = margin - instance_part
    if room <= 0:
        return cap
    return min(cap, math.ceil(n * (sampling_part / room) ** 2))
