"""Each check the gate makes, as a small function returning a Check with its numbers and reason.

Three outcomes: pass, fail, inconclusive. Latency checks on quantiles use bootstrap intervals:
- absolute SLO: pass if the interval lies under the limit, fail if above it, else inconclusive;
- relative to the baseline: fail if the ratio's estimate is beyond the allowed increase and the
  interval excludes 1 (a real regression, not noise); pass if the whole interval is within the
  allowed increase; otherwise inconclusive, with the sample size that would settle it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from components.gate import statistics as st
from components.gate.evidence import Evidence
from components.gate.policy import GatePolicy

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}


@dataclass(frozen=True)
class Check:
    """One check's outcome and the numbers behind it."""

    name: str
    status: str
    value: float | None
    threshold: float | None
    reason: str
    interval: tuple[float, float] | None = None
    samples_needed: int | None = None

    def to_dict(self) -> dict:
        """The JSON form in the verdict."""
        return asdict(self)


def failed_evidence(name: str, reason: str) -> Check:
    """A result the gate could not use: fail closed."""
    return Check(name, FAIL, None, None, reason)


def sample_size(evidence: Evidence, minimum: int) -> Check:
    """Enough measured requests to judge?"""
    name = f"{evidence.role}_samples"
    if evidence.n < minimum:
        return Check(name, INCONCLUSIVE, evidence.n, minimum,
                     f"{evidence.n} requests measured, the policy needs {minimum}", samples_needed=minimum)
    return Check(name, PASS, evidence.n, minimum, f"{evidence.n} requests measured (≥ {minimum})")


def success_ratio(evidence: Evidence, minimum: float) -> Check:
    """Errors under the limit?"""
    ratio = evidence.document["success_ratio"]
    errors = evidence.document["counts"]["by_error"]
    detail = ", ".join(f"{kind} {count}" for kind, count in errors.items()) or "no errors"
    status = PASS if ratio >= minimum else FAIL
    return Check(f"{evidence.role}_success_ratio", status, ratio, minimum,
                 f"success {ratio:.4%} vs minimum {minimum:.4%} ({detail})")


def as_reference(check: Check) -> Check:
    """A baseline's measurement check: when it failed, inconclusive, not failed. A baseline that errs or falls
    short of the load (a pod replaced, a restart) is no evidence against the candidate, and no reference to
    judge it by."""
    if check.status != FAIL:
        return check
    return replace(check, status=INCONCLUSIVE, reason=f"{check.reason}: the baseline failed, which says nothing of "
                   "the candidate; measure again once it serves")


def achieved_rate(evidence: Evidence, min_ratio: float, min_qps: float | None) -> Check:
    """Did the run deliver the load it was asked for (and any absolute minimum)?"""
    achieved, requested = evidence.document["achieved_qps"], evidence.document["requested_qps"]
    name = f"{evidence.role}_achieved_rate"
    if requested is not None and achieved < requested * min_ratio:
        return Check(name, FAIL, achieved, requested * min_ratio,
                     f"achieved {achieved:.1f} qps of {requested:.1f} requested: the measurement is not valid")
    if min_qps is not None and achieved < min_qps:
        return Check(name, FAIL, achieved, min_qps, f"achieved {achieved:.1f} qps, below the {min_qps:.1f} qps SLO")
    wanted = f" of {requested:.1f} requested" if requested is not None else ""
    return Check(name, PASS, achieved, min_qps, f"achieved {achieved:.1f} qps{wanted}")


def slo_quantile(evidence: Evidence, label: str, limit_ms: float, policy: GatePolicy,
                 rng: np.random.Generator) -> Check:
    """The candidate's quantile against an absolute limit."""
    stats = policy.statistics
    if _by_windows(policy, evidence):
        interval = st.block_quantile_interval(_in_order(evidence), QUANTILES[label], stats.confidence,
                                              st.window_draws(stats.time_windows, stats.bootstrap_resamples, rng))
    else:
        interval = st.quantile_interval(evidence.latencies_ms, QUANTILES[label], stats.confidence,
                                        stats.bootstrap_resamples, rng)
    bounds = (interval.low, interval.high)
    text = f"{label} {interval.estimate:.3f} ms [{interval.low:.3f}, {interval.high:.3f}] vs limit {limit_ms} ms"
    if interval.high <= limit_ms:
        return Check(f"slo_{label}", PASS, interval.estimate, limit_ms, text, bounds)
    if interval.low > limit_ms:
        return Check(f"slo_{label}", FAIL, interval.estimate, limit_ms, text, bounds)
    needed = st.samples_needed(evidence.n, interval, abs(limit_ms - interval.estimate))
    return Check(f"slo_{label}", INCONCLUSIVE, interval.estimate, limit_ms, text + ": too close to call", bounds,
                 needed)


def relative_quantile(candidate: Evidence, baseline: Evidence, label: str, max_increase_pct: float,
                      policy: GatePolicy, rng: np.random.Generator) -> Check:
    """Candidate/baseline ratio of a quantile against the allowed increase."""
    stats = policy.statistics
    if _by_windows(policy, candidate, baseline):
        interval = st.block_ratio_interval(_in_order(candidate), _in_order(baseline), QUANTILES[label],
                                           stats.confidence,
                                           st.window_draws(stats.time_windows, stats.bootstrap_resamples, rng))
    else:
        interval = st.ratio_interval(candidate.latencies_ms, baseline.latencies_ms, QUANTILES[label],
                                     stats.confidence, stats.bootstrap_resamples, rng)
    interval = st.with_instance_noise(interval, stats.instance_noise_for(label), stats.confidence)
    limit = 1 + max_increase_pct / 100
    bounds = (interval.low, interval.high)
    text = (f"{label} ratio {interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}] "
            f"vs allowed {limit:.3f}")
    name = f"relative_{label}"
    if interval.estimate > limit and interval.low > 1:
        return Check(name, FAIL, interval.estimate, limit, text + ": a significant regression", bounds)
    if interval.high <= limit:
        return Check(name, PASS, interval.estimate, limit, text, bounds)
    margin = limit - interval.estimate if interval.estimate <= limit else interval.estimate - 1
    needed = st.samples_needed(min(candidate.n, baseline.n), interval, margin)
    return Check(name, INCONCLUSIVE, interval.estimate, limit, text + ": too noisy to call", bounds, needed)


def _in_order(evidence: Evidence) -> np.ndarray:
    """The samples in completion order (only asked for once `_by_windows` said every result kept them)."""
    if evidence.in_order_ms is None:
        raise ValueError(f"the {evidence.role} result kept no samples in order")
    return evidence.in_order_ms


def _by_windows(policy: GatePolicy, *evidence: Evidence) -> bool:
    """Resample time windows: asked for, and every result kept its requests in order, enough for each window."""
    windows = policy.statistics.time_windows
    return windows > 0 and all(e.in_order_ms is not None and e.in_order_ms.size >= 5 * windows for e in evidence)


def mann_whitney(candidate: Evidence, baseline: Evidence, max_increase_pct: float, alpha: float) -> Check:
    """Are candidate latencies stochastically larger, by more than the allowed p50 increase?"""
    p_value = st.mann_whitney_greater(candidate.latencies_ms, baseline.latencies_ms)
    ratio = st.sample_quantile(candidate.latencies_ms, 0.5) / st.sample_quantile(baseline.latencies_ms, 0.5)
    limit = 1 + max_increase_pct / 100
    text = f"Mann–Whitney U one-sided p = {p_value:.2e}, median ratio {ratio:.3f} (allowed {limit:.3f})"
    if p_value < alpha and ratio > limit:
        return Check("mann_whitney", FAIL, p_value, alpha, text + ": candidate is slower")
    return Check("mann_whitney", PASS, p_value, alpha, text)


def tail_spread(candidate: Evidence, baseline: Evidence, max_increase_pct: float, alpha: float) -> Check:
    """Did the spread or tail grow? Mann–Whitney alone passes a candidate whose variance grew."""
    p_value = st.spread_test(candidate.latencies_ms, baseline.latencies_ms)
    ratio = st.tail_ratio(candidate.latencies_ms) / st.tail_ratio(baseline.latencies_ms)
    limit = 1 + max_increase_pct / 100
    text = (f"tail (p99/p50) ratio {ratio:.3f} vs allowed {limit:.3f}; "
            f"Brown–Forsythe spread test p = {p_value:.2e}")
    if p_value < alpha and ratio > limit:
        return Check("tail_spread", FAIL, ratio, limit, text + ": the spread grew")
    return Check("tail_spread", PASS, ratio, limit, text)


def accuracy(candidate_metrics: dict | None, baseline_metrics: dict | None, minimum: float | None,
             max_drop: float | None) -> list[Check]:
    """The model's held-out accuracy against the SLO and against the baseline model's."""
    checks = []
    value = (candidate_metrics or {}).get("accuracy")
    if minimum is not None:
        if value is None:
            checks.append(Check("slo_accuracy", FAIL, None, minimum, "no training metrics for the candidate"))
        else:
            checks.append(Check("slo_accuracy", PASS if value >= minimum else FAIL, value, minimum,
                                f"accuracy {value:.4f} vs minimum {minimum:.4f}"))
    base = (baseline_metrics or {}).get("accuracy")
    if max_drop is not None and value is not None and base is not None:
        floor = base - max_drop
        checks.append(Check("relative_accuracy", PASS if value >= floor else FAIL, value, floor,
                            f"accuracy {value:.4f} vs baseline {base:.4f} minus {max_drop}"))
    return checks
