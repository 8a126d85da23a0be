"""The HorizontalPodAutoscaler's replica calculation, as Kubernetes' controller makes it, for the local platform.

Each sync: the usage ratio is the metric's per-replica average over the target; within the tolerance (10%)
nothing changes, else the raw recommendation is ceil(total metric / target). Then, as the controller's
behaviors do by default: a scale-down takes the highest recommendation of the stabilization window (300 s;
shortened by option for tests), a scale-up is limited to max(+4 replicas, +100%) per 15 s counted from the
replicas at the period's start, and the result stays within [min, max]. The reason names the condition that
decided, with the controller's names (ScaleUpLimit, ScaleDownStabilized, TooFewReplicas, TooManyReplicas...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HPA_SYNC_PERIOD_S = 15.0  # the HPA controller's default sync period


@dataclass(frozen=True)
class ScalingBehavior:
    """The HPA's defaults (autoscaling/v2 `behavior`), the window shortened by option for tests."""

    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0
    scale_up_pods: int = 4
    scale_up_percent: int = 100
    scale_up_period_s: float = 15.0


@dataclass(frozen=True)
class ScaleDecision:
    """What one sync decided: the replicas to run, the raw recommendation, and why."""

    desired: int
    recommended: int
    reason: str
    message: str


@dataclass
class HorizontalScaler:
    """One scale target's autoscaler: its bounds, target per replica, and the history the behaviors read."""

    min_replicas: int
    max_replicas: int
    target: float
    behavior: ScalingBehavior = field(default_factory=ScalingBehavior)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_ups: list[tuple[float, int]] = field(default_factory=list)

    def decide(self, now: float, current: int, total: float | None) -> ScaleDecision:
        """The replicas for `current` ready replicas whose metric adds up to `total` (None: no reading)."""
        if total is None:
            return ScaleDecision(current, current, "FailedGetMetric", "no metric reading; keeping the replicas")
        recommended, message = self._recommendation(current, total)
        self.recommendations = [(at, count) for at, count in self.recommendations
                                if at > now - self.behavior.scale_down_stabilization_s]
        self.recommendations.append((now, recommended))
        desired, reason = self._stabilized(current, recommended)
        desired, reason = self._rate_limited(now, current, desired, reason)
        desired, reason = self._bounded(desired, reason)
        if desired > current:
            self.scale_ups.append((now, desired - current))
        return ScaleDecision(desired, recommended, reason, message)

    def _recommendation(self, current: int, total: float) -> tuple[int, str]:
        per_replica = total / max(current, 1)
        ratio = per_replica / self.target
        message = f"{per_replica:.3g} per replica against a target of {self.target:g} (ratio {ratio:.2f})"
        if current > 0 and abs(ratio - 1.0) <= self.behavior.tolerance:
            return current, message + ", within the tolerance"
        return max(math.ceil(total / self.target), 0), message

    def _stabilized(self, current: int, recommended: int) -> tuple[int, str]:
        highest = max(count for _, count in self.recommendations)
        if recommended < current and highest > recommended:
            return min(highest, current), "ScaleDownStabilized"
        return recommended, "DesiredWithinRange"

    def _rate_limited(self, now: float, current: int, desired: int, reason: str) -> tuple[int, str]:
        if desired <= current:
            return desired, reason
        period = self.behavior.scale_up_period_s
        self.scale_ups = [(at, added) for at, added in self.scale_ups if at > now - period]
        at_period_start = current - sum(added for _, added in self.scale_ups)
        limit = max(at_period_start + self.behavior.scale_up_pods,
                    math.ceil(at_period_start * (1 + self.behavior.scale_up_percent / 100)))
        return (limit, "ScaleUpLimit") if desired > limit else (desired, reason)

    def _bounded(self, desired: int, reason: str) -> tuple[int, str]:
        if desired < self.min_replicas:
            return self.min_replicas, "TooFewReplicas"
        if desired > self.max_replicas:
            return self.max_replicas, "TooManyReplicas"
        return desired, reason
