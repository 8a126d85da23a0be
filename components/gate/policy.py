"""The gate's policy: absolute SLOs, limits relative to the baseline, and statistical settings.

Given as a YAML or JSON file and/or flags. Every key is known and typed: an unknown key, a value of
the wrong type or sign is an error naming the key, never silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from components.errors import InvalidInputError
from components.inputs import clipped

ON_INCONCLUSIVE = ("rollback", "hold")
SPENDING = ("pocock", "obrien-fleming")
BASELINES = ("copy", "primary")


@dataclass(frozen=True)
class SloPolicy:
    """Absolute limits on the candidate alone (None = not checked)."""

    max_p50_ms: float | None = None
    max_p90_ms: float | None = None
    max_p99_ms: float | None = None
    min_success_ratio: float = 0.999
    min_achieved_ratio: float = 0.99
    min_achieved_qps: float | None = None
    min_accuracy: float | None = None


@dataclass(frozen=True)
class RelativePolicy:
    """How much worse than the baseline the candidate may be, in percent (None = not checked)."""

    max_p50_increase_pct: float | None = 10.0
    max_p90_increase_pct: float | None = 10.0
    max_p99_increase_pct: float | None = 25.0
    max_tail_increase_pct: float | None = 25.0
    max_accuracy_drop: float | None = 0.01


@dataclass(frozen=True)
class StatisticsPolicy:
    """How sure the gate must be."""

    min_samples: int = 1000
    confidence: float = 0.95
    bootstrap_resamples: int = 4000
    seed: int = 0
    # Requests measured close in time share the machine's moment, so they are not independent: the
    # bootstrap resamples whole time windows (this many per result; both sides of a comparison together).
    # 0 resamples requests independently (also what results without raw samples get).
    time_windows: int = 20
    # Two processes serving the same model differ by a few percent for the whole run (where they run, memory
    # layout): noise that no resampling within one run can see, and that no amount of time shrinks. One
    # instance's standard deviation per quantile, as `meshserve noise` measured it on this 2-core machine
    # between fresh processes (tests/bench/bench_analysis.py): p50 0.9%, p90 1.5%, p99 2.5%. A comparison
    # carries it for both sides. Measure your own (pods on different nodes likely differ more).
    # `instance_noise_pct`, when given, is one value for all three.
    instance_noise_pct: float | None = None
    instance_noise_p50_pct: float = 1.0
    instance_noise_p90_pct: float = 1.5
    instance_noise_p99_pct: float = 2.5

    def instance_noise_for(self, label: str) -> float:
        """One instance's noise for a quantile (p50, p90, p99), in percent."""
        if self.instance_noise_pct is not None:
            return self.instance_noise_pct
        return float(getattr(self, f"instance_noise_{label}_pct"))


@dataclass(frozen=True)
class AnalysisPolicy:
    """How the side-by-side analysis measures, how often it looks, and when it must stop.

    It measures both sides in windows of `window_s` and judges after each, spending `alpha` (1 -
    statistics.confidence, for each one-sided test) over the looks a budget of `max_duration_s` plans,
    by the `spending` function. Each window is cut into blocks of `block_s` for the batch means. The
    baseline is a fresh `copy` of the primary (the same model, started for the analysis and removed
    after it, as Kayenta recommends) or the `primary` itself.
    """

    window_s: float = 5.0
    max_duration_s: float = 120.0
    block_s: float = 0.5
    warmup_s: float = 1.0
    spending: str = "pocock"
    baseline: str = "copy"

    @property
    def planned_looks(self) -> int:
        """How many looks the budget holds."""
        return max(1, math.ceil(self.max_duration_s / self.window_s - 1e-9))


@dataclass(frozen=True)
class GatePolicy:
    """The whole policy."""

    slo: SloPolicy = field(default_factory=SloPolicy)
    relative: RelativePolicy = field(default_factory=RelativePolicy)
    statistics: StatisticsPolicy = field(default_factory=StatisticsPolicy)
    analysis: AnalysisPolicy = field(default_factory=AnalysisPolicy)
    on_inconclusive: str = "rollback"

    def to_dict(self) -> dict:
        """The JSON form recorded in the verdict."""
        return asdict(self)


_SECTIONS = {"slo": SloPolicy, "relative": RelativePolicy, "statistics": StatisticsPolicy,
             "analysis": AnalysisPolicy}
_CHOICES = {"spending": SPENDING, "baseline": BASELINES}
MAX_BOOTSTRAP_RESAMPLES = 100_000  # the resampling error of a 95% bound is 0.1% of it at 20,000 already
_INTEGERS = {"min_samples", "bootstrap_resamples", "seed", "time_windows"}
_FRACTIONS = {"min_success_ratio", "min_achieved_ratio", "min_accuracy", "max_accuracy_drop", "confidence"}


def load_policy(path: Path | None = None, overrides: dict[str, Any] | None = None) -> GatePolicy:
    """The default policy, updated from a file, then from `section.key` (or top-level) overrides; validated."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read(Path(path))
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if key:
            data.setdefault(section, {})[key] = value
        else:
            data[section] = value
    return policy_from_dict(data)


def _read(path: Path) -> dict:
    from components.inputs import load_document

    data = load_document(path, "policy")
    if not isinstance(data, dict):
        raise InvalidInputError("policy", f"{path} does not hold a mapping", "write sections slo:, relative:, ...")
    return data


def policy_from_dict(data: dict[str, Any]) -> GatePolicy:
    """Build and validate a policy from nested dicts."""
    unknown = set(data) - set(_SECTIONS) - {"on_inconclusive"}
    if unknown:
        known = ", ".join([*_SECTIONS, "on_inconclusive"])
        raise InvalidInputError(f"policy.{sorted(unknown)[0]}", "unknown key", f"use one of {known}")
    sections = {name: _section(name, cls, data.get(name) or {}) for name, cls in _SECTIONS.items()}
    on_inconclusive = data.get("on_inconclusive", "rollback")
    if on_inconclusive not in ON_INCONCLUSIVE:
        raise InvalidInputError("policy.on_inconclusive", f"{clipped(on_inconclusive)} is not allowed",
                                "use rollback or hold")
    policy = GatePolicy(**sections, on_inconclusive=on_inconclusive)
    _check_ranges(policy)
    return policy


def _section(name: str, cls: type, values: dict) -> Any:
    if not isinstance(values, dict):
        raise InvalidInputError(f"policy.{name}", "must be a mapping", f"write {name}: with keys under it")
    defaults = cls()
    known = [f.name for f in fields(cls)]
    optional = {f.name for f in fields(cls) if "None" in str(f.type)}
    for key, value in values.items():
        if key not in known:
            raise InvalidInputError(f"policy.{name}.{key}", "unknown key", f"use one of {', '.join(known)}")
        if value is None and key in optional:
            continue  # an optional check, switched off
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                raise InvalidInputError(f"policy.{name}.{key}", f"{clipped(value)} is not allowed",
                                        f"use one of {', '.join(_CHOICES[key])}")
            continue
        integer = key in _INTEGERS
        if integer and isinstance(value, float) and value.is_integer():
            values = {**values, key: int(value)}  # JSON via protobuf Struct (KFP) turns 1000 into 1000.0
        elif isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            kind = "a whole number" if integer else "a number"
            raise InvalidInputError(f"policy.{name}.{key}", f"{clipped(value)} is not {kind}", f"pass {kind}")
    return replace(defaults, **values)


def _check_ranges(policy: GatePolicy) -> None:
    for name in _SECTIONS:
        for key, value in asdict(getattr(policy, name)).items():
            if value is None or key == "seed" or key in _CHOICES:
                continue
            if not math.isfinite(value):
                raise InvalidInputError(f"policy.{name}.{key}", f"must be a finite number (got {value})",
                                        "pass a finite value")
            if value < 0 or (value == 0 and key.startswith("max_") and key.endswith("_ms")):
                raise InvalidInputError(f"policy.{name}.{key}", f"must be positive (got {value})",
                                        "pass a value above 0")
            if key in _FRACTIONS and not value <= 1:
                raise InvalidInputError(f"policy.{name}.{key}", f"must be a fraction (got {value})",
                                        "pass a value between 0 and 1")
    if not 0.5 < policy.statistics.confidence < 1:
        raise InvalidInputError("policy.statistics.confidence", f"{policy.statistics.confidence} is out of range",
                                "pass e.g. 0.95")
    if policy.statistics.time_windows not in range(5, 1001) and policy.statistics.time_windows != 0:
        raise InvalidInputError("policy.statistics.time_windows", f"{policy.statistics.time_windows} is out of range",
                                "pass 5 to 1000 windows, or 0 to resample requests independently")
    _check_analysis(policy.analysis)
    if policy.statistics.bootstrap_resamples > MAX_BOOTSTRAP_RESAMPLES:
        raise InvalidInputError("policy.statistics.bootstrap_resamples", f"{policy.statistics.bootstrap_resamples} "
                                "would take minutes and gigabytes", f"pass at most {MAX_BOOTSTRAP_RESAMPLES}")
    if policy.statistics.min_samples < 20 or policy.statistics.bootstrap_resamples < 200:
        raise InvalidInputError("policy.statistics", "min_samples < 20 or bootstrap_resamples < 200",
                                "pass at least 20 samples and 200 resamples")


def _check_analysis(analysis: AnalysisPolicy) -> None:
    if not 0.05 <= analysis.block_s <= analysis.window_s:
        raise InvalidInputError("policy.analysis.block_s", f"{analysis.block_s} s is out of range",
                                "pass 0.05 s up to window_s")
    if not analysis.window_s <= analysis.max_duration_s <= 3600:
        raise InvalidInputError("policy.analysis.max_duration_s", f"{analysis.max_duration_s} s is out of range",
                                "pass window_s up to 3600 s")
    if analysis.planned_looks > 200:
        raise InvalidInputError("policy.analysis.window_s", f"{analysis.planned_looks} looks is too many",
                                "pass a window of at least max_duration_s / 200")
