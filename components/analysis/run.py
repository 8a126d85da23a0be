"""`analyze`: measure the candidate and the baseline side by side in windows, judge after each, stop when
it can tell.

The loop is the same wherever it runs (the CLI, the KFP component, the Hera template): it is given a
function that measures one window of both sides and returns their result documents. After each
window it looks (components/analysis/looks.py). A failed check stops it as ROLLBACK at once, every
check passing stops it as PROMOTE, and at the budget it is INCONCLUSIVE, each undecided check saying
what would settle it. The trace keeps every look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from components import __version__
from components.analysis.looks import LookPlan, Side, baseline_failure, look_checks
from components.benchmark.result import merge_windows
from components.gate import checks as c
from components.gate.decision import (
    INCONCLUSIVE,
    PROMOTE,
    ROLLBACK,
    Verdict,
    action_of,
    decision_of,
    model_facts,
    model_metrics,
)
from components.gate.policy import GatePolicy

ANALYSIS_SCHEMA = "meshserve.analysis/v1"
# Each window after the first reopens its connections: this much of it is sent but not measured.
WINDOW_WARMUP_S = 0.2

# Measures one window: (seconds, warm-up seconds) -> the candidate's and the baseline's result documents
# (the baseline None when there is none).
MeasureWindow = Callable[[float, float], tuple[dict, dict | None]]


@dataclass(frozen=True)
class Look:
    """One look: when, at which alpha, every check, and what it decided."""

    index: int
    measured_s: float
    alpha: float
    decision: str
    checks: list[c.Check]

    def to_dict(self) -> dict:
        """The JSON form in the trace."""
        return {"index": self.index, "measured_s": round(self.measured_s, 3), "alpha": self.alpha,
                "decision": self.decision, "checks": [check.to_dict() for check in self.checks]}


@dataclass
class Analysis:
    """The verdict, every look that led to it, and what each side measured."""

    verdict: Verdict
    looks: list[Look]
    stopped: str
    candidate: Side
    baseline: Side | None
    windows: dict[str, list[dict]] = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    merged: dict[str, dict] | None = None

    def results(self) -> dict[str, dict]:
        """Each side's windows merged into one benchmark result document (merged once, then kept)."""
        if self.merged is None:
            self.merged = {role: merge_windows(docs) for role, docs in self.windows.items() if docs}
        return self.merged

    def to_dict(self) -> dict:
        """The verdict artifact: the gate's verdict plus the analysis trace."""
        return {**self.verdict.to_dict(), "analysis": {
            "schema": ANALYSIS_SCHEMA, "tool": {"name": "meshserve-analyze", "version": __version__},
            "stopped": self.stopped, "looks_taken": len(self.looks),
            "planned_looks": self.verdict.policy.analysis.planned_looks,
            "measured_s_per_side": round(self.looks[-1].measured_s, 3) if self.looks else 0.0,
            "samples": {"candidate": self.candidate.total,
                        **({"baseline": self.baseline.total} if self.baseline else {})},
            "context": self.context, "looks": [look.to_dict() for look in self.looks]}}


def analyze(measure: MeasureWindow, policy: GatePolicy, *, with_baseline: bool = True,
            candidate_model: dict | None = None, baseline_model: dict | None = None, instances: int = 1,
            on_look: Callable[[Look], None] | None = None, context: dict | None = None,
            keep_windows: bool = True) -> Analysis:
    """Measure window by window until every check is settled, one fails, or the budget is spent
    (`keep_windows` False keeps no result documents: for simulations, which judge thousands of analyses)."""
    plan = policy.analysis
    static = c.accuracy(model_metrics(candidate_model), model_metrics(baseline_model), policy.slo.min_accuracy,
                        policy.relative.max_accuracy_drop)
    candidate, baseline = Side("candidate"), Side("baseline") if with_baseline else None
    windows: dict[str, list[dict]] = {"candidate": [], "baseline": []}
    looks: list[Look] = []
    set_aside: list[str] = []
    blocks_per_window = max(1, round(plan.window_s / plan.block_s))
    decision, checks, stopped = ROLLBACK, list(static), "a check failed before any load was sent"
    if decision_of(static) != ROLLBACK:
        for index in range(1, plan.planned_looks + 1):
            measured = measure(plan.window_s, plan.warmup_s if index == 1 else WINDOW_WARMUP_S)
            look_plan = LookPlan.at(index, index * plan.window_s, (index - 1) * plan.window_s, policy)
            pair_candidate, pair_baseline = measured
            failure = baseline_failure(index, pair_candidate, pair_baseline, policy, look_plan.alpha) \
                if pair_baseline is not None else ""
            if failure:
                set_aside.append(failure)
            for side, document in zip((candidate, baseline), measured, strict=True):
                if side is not None and document is not None and not failure:
                    side.add_window(document, blocks_per_window)
                    if keep_windows:
                        windows[side.role].append(document)
            checks = look_checks(candidate, baseline, policy, look_plan, instances) + static + \
                _set_aside_check(set_aside)
            decision = decision_of(checks)
            last = index == plan.planned_looks
            looks.append(Look(index, candidate.measured_seconds, look_plan.alpha,
                              "continue" if decision == INCONCLUSIVE and not last else decision, checks))
            if on_look is not None:
                on_look(looks[-1])
            if decision in (PROMOTE, ROLLBACK):
                stopped = f"settled at look {index} of {plan.planned_looks}"
                break
            if last:
                stopped = f"the budget ({plan.max_duration_s:g} s per side) was spent"
    if set_aside:
        stopped += f"; {len(set_aside)} window(s) set aside, the baseline having failed in them"
    analysis = Analysis(Verdict(decision, action_of(decision, policy), checks, policy, model_facts(candidate_model),
                                model_facts(baseline_model)), looks, stopped, candidate, baseline, windows,
                        context or {})
    analysis.verdict.evidence.update(_facts(analysis.results(), windows))
    return analysis


def _set_aside_check(set_aside: list[str]) -> list[c.Check]:
    """The windows set aside, named in the verdict (none: no check). It passes: the others decide, paired."""
    if not set_aside:
        return []
    return [c.Check("baseline_windows", c.PASS, len(set_aside), None, "; ".join(set_aside))]


def _facts(results: dict[str, dict], windows: dict[str, list[dict]]) -> dict:
    """What the verdict records of each side's measurement."""
    return {role: {"url": merged["target"]["url"], "protocol": merged["target"]["protocol"],
                   "samples": merged["counts"]["total"], "requested_qps": merged["requested_qps"],
                   "achieved_qps": merged["achieved_qps"], "latency_ms": merged["latency_ms"],
                   "started_at": merged["started_at"], "windows": len(windows[role])}
            for role, merged in results.items()}
