"""The highest rate one replica serves within an SLO, found in bounded open-loop steps.

Each step sends a fixed rate for up to `max_looks` looks of `look_s` seconds. After every look the sequential
analysis (components/analysis/sequential.py) decides on the step's cumulative requests: p99 <= the SLO is the
share of requests slower than it being at most 1%, judged by its exact (Clopper–Pearson) bounds at the alpha
this look may spend (Lan–DeMets spending over the planned looks). The step is **within** once the upper bound
is under 1% and the failure rate is not shown above the SLO's; **beyond** once the lower bound is over 1%, the
failure rate is shown above the SLO's, or the load could not be sent at the rate (under 95% of it); after its
last look, **inconclusive**. The search climbs by `step_qps` from `start_qps` to `max_qps` and stops at the
first step that is not within; the capacity is the last rate within.

(A success SLO of 99.9% needs some 3,000 requests without a failure to be shown held, so failures only ever
reject a step; latency is what has to be shown.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from components.errors import InvalidInputError

QUANTILE = 0.99
MIN_ACHIEVED = 0.95  # of the requested rate; below it, the load could not be sent (the replica is saturated)


@dataclass(frozen=True)
class CapacitySlo:
    """What one replica must hold: p99 at most `p99_ms`, and a success ratio at least `success`."""

    p99_ms: float = 10.0
    success: float = 0.999


@dataclass(frozen=True)
class SearchPlan:
    """The steps: rates from `start_qps` by `step_qps` up to `max_qps`, each at most `max_looks` looks of
    `look_s` seconds, deciding at level `alpha` with the `spending` function."""

    start_qps: float = 100.0
    step_qps: float = 100.0
    max_qps: float = 2000.0
    look_s: float = 5.0
    max_looks: int = 5
    alpha: float = 0.05
    spending: str = "pocock"

    def validated(self) -> SearchPlan:
        """This plan, or its first field out of range as an error."""
        for name in ("start_qps", "step_qps", "max_qps", "look_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(name, f"{value:g} is not a positive number", "pass a value above 0")
        if self.max_qps < self.start_qps:
            raise InvalidInputError("max_qps", f"{self.max_qps:g} is below start_qps {self.start_qps:g}",
                                    "pass max_qps >= start_qps")
        if not 1 <= self.max_looks <= 50:
            raise InvalidInputError("max_looks", f"{self.max_looks} is out of range", "pass 1 to 50")
        if not 0 < self.alpha < 0.5:
            raise InvalidInputError("alpha", f"{self.alpha:g} is out of range", "pass 0 < alpha < 0.5")
        return self

    def rates(self) -> list[float]:
        """Every step's rate, lowest first."""
        count = int(math.floor((self.max_qps - self.start_qps) / self.step_qps + 1e-9)) + 1
        return [self.start_qps + index * self.step_qps for index in range(count)]


@dataclass(frozen=True)
class Look:
    """What one look's load measured: requests sent, those that failed, and each answered one's latency (ms)."""

    requested_qps: float
    achieved_qps: float
    total: int
    failed: int
    latencies_ms: list[float]


@dataclass
class StepResult:
    """One rate's outcome: its cumulative counts, its p99, and the verdict with the reason."""

    qps: float
    achieved_qps: float = 0.0
    requests: int = 0
    slow: int = 0
    failed: int = 0
    looks: int = 0
    verdict: str = "inconclusive"
    why: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def p99_ms(self) -> float:
        """The step's p99 over every answered request (nan when none was)."""
        import numpy as np

        return float(np.percentile(self.latencies_ms, 100 * QUANTILE)) if self.latencies_ms else math.nan


@dataclass(frozen=True)
class CapacityResult:
    """The search: its SLO and plan, every step run, and the capacity (None: not even the first rate)."""

    slo: CapacitySlo
    plan: SearchPlan
    steps: list[StepResult]

    @property
    def capacity_qps(self) -> float | None:
        """The highest rate shown within the SLO."""
        within = [step.qps for step in self.steps if step.verdict == "within"]
        return max(within) if within else None


def search_capacity(measure: Callable[[float, float], Look], plan: SearchPlan, slo: CapacitySlo,
                    on_step: Callable[[StepResult], None] = lambda step: None) -> CapacityResult:
    """Climb the plan's rates with `measure(qps, seconds)` until a step is not within the SLO."""
    plan.validated()
    steps: list[StepResult] = []
    for qps in plan.rates():
        step = _run_step(measure, qps, plan, slo)
        steps.append(step)
        on_step(step)
        if step.verdict != "within":
            break
    return CapacityResult(slo, plan, steps)


def _run_step(measure: Callable[[float, float], Look], qps: float, plan: SearchPlan,
              slo: CapacitySlo) -> StepResult:
    from components.analysis.sequential import error_rate_bounds, look_alpha

    step = StepResult(qps)
    for index in range(1, plan.max_looks + 1):
        look = measure(qps, plan.look_s)
        step.looks, step.requests, step.failed = index, step.requests + look.total, step.failed + look.failed
        step.slow += sum(latency > slo.p99_ms for latency in look.latencies_ms)
        step.latencies_ms += look.latencies_ms
        step.achieved_qps = look.achieved_qps
        if look.achieved_qps < MIN_ACHIEVED * qps:
            step.verdict, step.why = "beyond", f"sent {look.achieved_qps:.0f} of {qps:g} qps: saturated"
            return step
        # Two checks share the look's alpha: each one-sided bound at half of it.
        alpha = look_alpha(index / plan.max_looks, (index - 1) / plan.max_looks, plan.alpha, plan.spending) / 2
        slow_low, slow_high = error_rate_bounds(step.slow, step.requests, alpha)
        failed_low, _ = error_rate_bounds(step.failed, step.requests, alpha)
        allowed_failures = 1 - slo.success
        if failed_low > allowed_failures:
            step.verdict, step.why = "beyond", f"failure rate at least {failed_low:.2%} > {allowed_failures:.2%}"
            return step
        if slow_low > 1 - QUANTILE:
            step.verdict, step.why = "beyond", (f"at least {slow_low:.2%} of requests slower than "
                                                f"{slo.p99_ms:g} ms: p99 above the SLO")
            return step
        if slow_high < 1 - QUANTILE:
            step.verdict, step.why = "within", (f"at most {slow_high:.2%} of requests slower than "
                                                f"{slo.p99_ms:g} ms: p99 within the SLO")
            return step
    step.why = f"{plan.max_looks} looks did not decide ({step.slow} of {step.requests} slower than {slo.p99_ms:g} ms)"
    return step


def capacity_document(result: CapacityResult, headroom: float) -> dict:
    """The search as JSON: the SLO, the plan, each step, the capacity, and the scale target it gives (capacity
    times `headroom`) with where the number came from."""
    capacity = result.capacity_qps
    target = None if capacity is None else round(capacity * headroom, 3)
    return {"slo": {"p99_ms": result.slo.p99_ms, "success": result.slo.success},
            "plan": {name: getattr(result.plan, name) for name in result.plan.__dataclass_fields__},
            "steps": [{"qps": step.qps, "achieved_qps": step.achieved_qps, "requests": step.requests,
                       "slow": step.slow, "failed": step.failed, "looks": step.looks,
                       "p99_ms": None if math.isnan(step.p99_ms) else round(step.p99_ms, 3),
                       "verdict": step.verdict, "why": step.why} for step in result.steps],
            "capacity_qps": capacity, "headroom": headroom, "scale_target": target,
            "scale_target_source": None if capacity is None else (
                f"meshserve capacity: {capacity:g} qps per replica within p99 <= {result.slo.p99_ms:g} ms and "
                f"success >= {result.slo.success:.1%}, times headroom {headroom:g}")}


def scale_target_from(path: str) -> tuple[float, str]:
    """The scale target a capacity search wrote (`meshserve capacity --json`), and where it came from."""
    import json
    from pathlib import Path

    try:
        document = json.loads(Path(path).read_text())
    except ValueError:
        raise InvalidInputError("capacity", f"{path} is not JSON", "pass the file `meshserve capacity --json` "
                                "wrote") from None
    if not isinstance(document, dict) or not isinstance(document.get("scale_target"), int | float):
        raise InvalidInputError("capacity", f"{path} holds no scale target (no rate was within the SLO)",
                                "search again from a lower --start-qps")
    return float(document["scale_target"]), str(document.get("scale_target_source") or path)
