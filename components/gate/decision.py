"""`decide`: gather the checks and turn them into a verdict.

Any failed check → ROLLBACK; otherwise any inconclusive check → INCONCLUSIVE (never promotes; the
policy's `on_inconclusive` says whether the pipeline rolls back or holds); otherwise PROMOTE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from components import __version__
from components.gate import checks as c
from components.gate.evidence import Evidence, EvidenceError, check_comparable, load_evidence
from components.gate.policy import GatePolicy
from components.redaction import public_url

PROMOTE, ROLLBACK, INCONCLUSIVE = "PROMOTE", "ROLLBACK", "INCONCLUSIVE"
VERDICT_SCHEMA = "meshserve.gate-verdict/v1"


@dataclass(frozen=True)
class Verdict:
    """The decision, the action the pipeline takes, and every check behind it."""

    decision: str
    action: str
    checks: list[c.Check]
    policy: GatePolicy
    candidate_model: dict | None = None
    baseline_model: dict | None = None
    evidence: dict = field(default_factory=dict)

    def failed(self) -> list[c.Check]:
        """Checks that failed."""
        return [check for check in self.checks if check.status == c.FAIL]

    def undecided(self) -> list[c.Check]:
        """Checks that could not be decided."""
        return [check for check in self.checks if check.status == c.INCONCLUSIVE]

    def summary(self) -> str:
        """One line: the decision and the reasons that drove it."""
        driving = self.failed() or self.undecided()
        reasons = "; ".join(f"{check.name}: {check.reason}" for check in driving) or "every check passed"
        return f"{self.decision} ({self.action}): {reasons}"

    def to_dict(self) -> dict:
        """The machine-readable verdict artifact."""
        return {"schema": VERDICT_SCHEMA, "tool": {"name": "meshserve-gate", "version": __version__},
                "decided_at": datetime.now(UTC).isoformat(timespec="seconds"), "decision": self.decision,
                "action": self.action, "summary": self.summary(), "checks": [k.to_dict() for k in self.checks],
                "candidate_model": self.candidate_model, "baseline_model": self.baseline_model,
                "evidence": self.evidence, "policy": self.policy.to_dict()}


def decide(candidate_result: Path, baseline_result: Path | None = None, policy: GatePolicy | None = None,
           candidate_model: dict | None = None, baseline_model: dict | None = None) -> Verdict:
    """Judge the candidate's benchmark file (and model) against the policy and, if given, the baseline's."""
    candidate, baseline, load_failures = load_results(candidate_result, baseline_result)
    return judge(candidate, baseline, policy, candidate_model, baseline_model, load_failures)


def load_results(candidate_result: Path, baseline_result: Path | None
                 ) -> tuple[Evidence | None, Evidence | None, list[c.Check]]:
    """Both results, with a failed check for each one that cannot be used (fail closed)."""
    failures: list[c.Check] = []
    candidate = _load(candidate_result, "candidate", failures)
    baseline = _load(baseline_result, "baseline", failures) if baseline_result is not None else None
    return candidate, baseline, failures


def judge(candidate: Evidence | None, baseline: Evidence | None, policy: GatePolicy | None = None,
          candidate_model: dict | None = None, baseline_model: dict | None = None,
          load_failures: Sequence[c.Check] = ()) -> Verdict:
    """The verdict on loaded evidence (None where a result could not be loaded: it fails closed)."""
    policy = policy or GatePolicy()
    rng = np.random.default_rng(policy.statistics.seed)
    checks = list(load_failures)
    if candidate is None and not checks:
        checks.append(c.failed_evidence("candidate_result", "no candidate result"))
    if candidate is not None and baseline is not None:
        try:
            check_comparable(candidate, baseline)
        except EvidenceError as exc:
            checks.append(c.failed_evidence("comparable", str(exc)))
            baseline = None
    if candidate is not None:
        checks += _candidate_checks(candidate, policy, rng)
    if candidate is not None and baseline is not None:
        checks += _comparison_checks(candidate, baseline, policy, rng)
    checks += c.accuracy(model_metrics(candidate_model), model_metrics(baseline_model), policy.slo.min_accuracy,
                         policy.relative.max_accuracy_drop)
    decision = decision_of(checks)
    action = action_of(decision, policy)
    return Verdict(decision, action, checks, policy, model_facts(candidate_model), model_facts(baseline_model),
                   {role: _evidence_facts(e) for role, e in (("candidate", candidate), ("baseline", baseline)) if e})


def _load(path: Path, role: str, checks: list[c.Check]) -> Evidence | None:
    try:
        return load_evidence(path, role)
    except EvidenceError as exc:
        checks.append(c.failed_evidence(f"{role}_result", str(exc)))
        return None


def _candidate_checks(candidate: Evidence, policy: GatePolicy, rng: np.random.Generator) -> list[c.Check]:
    slo = policy.slo
    checks = [c.sample_size(candidate, policy.statistics.min_samples),
              c.success_ratio(candidate, slo.min_success_ratio),
              c.achieved_rate(candidate, slo.min_achieved_ratio, slo.min_achieved_qps)]
    for label, limit in (("p50", slo.max_p50_ms), ("p90", slo.max_p90_ms), ("p99", slo.max_p99_ms)):
        if limit is not None:
            checks.append(c.slo_quantile(candidate, label, limit, policy, rng))
    return checks


def _comparison_checks(candidate: Evidence, baseline: Evidence, policy: GatePolicy,
                       rng: np.random.Generator) -> list[c.Check]:
    relative, alpha = policy.relative, 1 - policy.statistics.confidence
    checks = [c.sample_size(baseline, policy.statistics.min_samples),
              c.as_reference(c.success_ratio(baseline, policy.slo.min_success_ratio)),
              c.as_reference(c.achieved_rate(baseline, policy.slo.min_achieved_ratio, None))]
    for label, limit in (("p50", relative.max_p50_increase_pct), ("p90", relative.max_p90_increase_pct),
                         ("p99", relative.max_p99_increase_pct)):
        if limit is not None:
            checks.append(c.relative_quantile(candidate, baseline, label, limit, policy, rng))
    if relative.max_p50_increase_pct is not None:
        checks.append(c.mann_whitney(candidate, baseline, relative.max_p50_increase_pct, alpha))
    if relative.max_tail_increase_pct is not None:
        checks.append(c.tail_spread(candidate, baseline, relative.max_tail_increase_pct, alpha))
    return checks


def action_of(decision: str, policy: GatePolicy) -> str:
    """What the pipeline does: promote, rollback, or the policy's `on_inconclusive`."""
    return {PROMOTE: "promote", ROLLBACK: "rollback"}.get(decision, policy.on_inconclusive)


def decision_of(checks: list[c.Check]) -> str:
    """Any failed check: ROLLBACK; else any undecided: INCONCLUSIVE; else PROMOTE."""
    statuses = {check.status for check in checks}
    if c.FAIL in statuses:
        return ROLLBACK
    if c.INCONCLUSIVE in statuses:
        return INCONCLUSIVE
    return PROMOTE


def model_metrics(model: dict | None) -> dict | None:
    """A model manifest's training metrics (None without a model)."""
    return (model or {}).get("metrics")


def model_facts(model: dict | None) -> dict | None:
    """What the verdict records of a model: name, digest, framework and its training metrics."""
    if model is None:
        return None
    metrics = model.get("metrics") or {}
    return {"name": model.get("name"), "model_digest": model.get("model_digest"),
            "framework": model.get("framework"),
            "metrics": {k: metrics[k] for k in ("accuracy", "n_test") if k in metrics}}


def _evidence_facts(evidence: Evidence) -> dict:
    document = evidence.document
    return {"url": public_url(document["target"]["url"]), "protocol": document["target"]["protocol"],
            "samples": evidence.n, "requested_qps": document["requested_qps"], "achieved_qps": document["achieved_qps"],
            "latency_ms": document["latency_ms"], "started_at": document["started_at"]}
