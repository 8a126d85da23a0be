"""The rollout policy of a progressive rollout: the traffic steps, how long each is watched, where the side-by-side
analysis runs, the live guard's thresholds and queries, and the webhooks (Flagger's kinds).

Given as a YAML or JSON file and/or defaults; every key is known and typed, as in the gate's policy: an unknown
key or a value of the wrong type is an error naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from components.errors import InvalidInputError
from components.inputs import clipped
from components.metrics.registry import PROVIDERS
from components.metrics.templates import DEFAULT_TEMPLATES

# Flagger's webhook kinds: gates (confirm-*), calls that must succeed (pre-rollout, rollout), a manual abort
# (rollback: a yes rolls back), calls whose failure is only reported (post-rollout), and notifications (event).
HOOK_KINDS = ("confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout", "rollback", "event")
GATES = ("confirm-rollout", "confirm-promotion")


@dataclass(frozen=True)
class GuardPolicy:
    """The live guard: per interval, the canary's request success rate (percent), p99 (ms) and request count
    from a metrics provider. An interval with fewer than `min_requests` requests, or no value, is "no data":
    it never passes, and a step that sees `max_no_data` of them is undecided. `address` "" uses the platform's
    own Prometheus (the local platform starts one); `queries` replaces the default Istio templates by name."""

    provider: str = "prometheus"
    address: str = ""
    min_requests: int = 20
    min_success_rate: float = 99.0
    max_p99_ms: float | None = 500.0
    max_no_data: int = 6
    queries: dict[str, str] = field(default_factory=dict)

    def query(self, name: str) -> str:
        """The template for a query name (request-success-rate, request-duration-p99, request-count)."""
        return self.queries.get(name) or DEFAULT_TEMPLATES[name]


@dataclass(frozen=True)
class HookSpec:
    """One webhook: its kind, URL (a confirm-promotion gate without one waits for `meshserve approve`), how long
    one call may take, how many times a failed call is retried, and metadata sent along."""

    name: str
    kind: str
    url: str = ""
    timeout_s: float = 10.0
    retries: int = 2
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RolloutPolicy:
    """The whole rollout policy."""

    steps: tuple[int, ...] = (10, 50, 100)
    interval_s: float = 10.0
    intervals_per_step: int = 2
    analysis_steps: tuple[int, ...] = (1,)  # 1-based steps where the side-by-side analysis runs
    approval_timeout_s: float = 3600.0  # how long a confirm gate waits before the rollout follows on_inconclusive
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    hooks: tuple[HookSpec, ...] = ()

    @property
    def query_interval(self) -> str:
        """The range each query covers: one interval (as Prometheus writes durations)."""
        return f"{self.interval_s:g}s"

    def hooks_of(self, kind: str) -> list[HookSpec]:
        """The hooks of one kind, in the order given."""
        return [hook for hook in self.hooks if hook.kind == kind]

    def to_dict(self) -> dict:
        """The JSON form kept with the progress."""
        return asdict(self)


def load_rollout_policy(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RolloutPolicy:
    """The default rollout policy, updated from a file and then from top-level overrides; validated."""
    from components.inputs import load_document

    data: dict[str, Any] = {}
    if path is not None:
        data = load_document(Path(path), "rollout_policy")
        if not isinstance(data, dict):
            raise InvalidInputError("rollout_policy", f"{path} does not hold a mapping", "write steps:, guard:, ...")
    data = {**data, **(overrides or {})}
    return rollout_policy_from_dict(data)


def rollout_policy_from_dict(data: dict[str, Any]) -> RolloutPolicy:
    """Build and validate a rollout policy from nested dicts (the form `to_dict` writes)."""
    known = [f.name for f in fields(RolloutPolicy)]
    _refuse_unknown("rollout_policy", data, known)
    defaults = RolloutPolicy()
    steps = tuple(_whole_numbers("rollout_policy.steps", data.get("steps", defaults.steps)))
    analysis_steps = tuple(_whole_numbers("rollout_policy.analysis_steps",
                                          data.get("analysis_steps", defaults.analysis_steps)))
    policy = RolloutPolicy(
        steps=steps, analysis_steps=analysis_steps,
        interval_s=_number("rollout_policy.interval_s", data.get("interval_s", defaults.interval_s)),
        intervals_per_step=int(_number("rollout_policy.intervals_per_step",
                                       data.get("intervals_per_step", defaults.intervals_per_step), whole=True)),
        approval_timeout_s=_number("rollout_policy.approval_timeout_s",
                                   data.get("approval_timeout_s", defaults.approval_timeout_s)),
        guard=_guard(data.get("guard") or {}),
        hooks=tuple(_hook(index, hook) for index, hook in enumerate(data.get("hooks") or [])))
    _check(policy)
    return policy


def _guard(data: Any) -> GuardPolicy:
    if not isinstance(data, dict):
        raise InvalidInputError("rollout_policy.guard", "must be a mapping", "write guard: with keys under it")
    _refuse_unknown("rollout_policy.guard", data, [f.name for f in fields(GuardPolicy)])
    defaults = GuardPolicy()
    provider = data.get("provider", defaults.provider)
    if provider not in PROVIDERS:
        raise InvalidInputError("rollout_policy.guard.provider", f"{clipped(provider)} is not a metrics provider",
                                f"use one of {', '.join(PROVIDERS)}")
    queries = data.get("queries") or {}
    if not isinstance(queries, dict) or any(name not in DEFAULT_TEMPLATES or not isinstance(text, str)
                                            for name, text in queries.items()):
        raise InvalidInputError("rollout_policy.guard.queries", "must map query names to PromQL templates",
                                f"use the names {', '.join(DEFAULT_TEMPLATES)}")
    max_p99 = data.get("max_p99_ms", defaults.max_p99_ms)
    address = data.get("address", defaults.address)
    if not isinstance(address, str):
        raise InvalidInputError("rollout_policy.guard.address", "must be a URL", "pass http(s)://HOST:PORT or \"\"")
    return GuardPolicy(
        provider=provider, address=address, queries=dict(queries),
        min_requests=int(_number("rollout_policy.guard.min_requests", data.get("min_requests", defaults.min_requests),
                                 whole=True)),
        min_success_rate=_number("rollout_policy.guard.min_success_rate",
                                 data.get("min_success_rate", defaults.min_success_rate)),
        max_p99_ms=None if max_p99 is None else _number("rollout_policy.guard.max_p99_ms", max_p99),
        max_no_data=int(_number("rollout_policy.guard.max_no_data", data.get("max_no_data", defaults.max_no_data),
                                whole=True)))


def _hook(index: int, data: Any) -> HookSpec:
    where = f"rollout_policy.hooks[{index}]"
    if not isinstance(data, dict):
        raise InvalidInputError(where, "must be a mapping", "write name:, kind:, url:")
    _refuse_unknown(where, data, [f.name for f in fields(HookSpec)])
    kind, url = data.get("kind"), data.get("url", "")
    if kind not in HOOK_KINDS:
        raise InvalidInputError(f"{where}.kind", f"{clipped(kind)} is not a webhook kind",
                                f"use one of {', '.join(HOOK_KINDS)}")
    if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
        raise InvalidInputError(f"{where}.url", f"{clipped(url)} is not an http(s) URL", "pass http(s)://HOST/PATH")
    if not url and kind != "confirm-promotion":
        raise InvalidInputError(f"{where}.url", f"a {kind} hook needs a URL",
                                "pass its url (only confirm-promotion may wait for `meshserve approve` alone)")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"{where}.metadata", "must map names to strings", "write metadata: {key: value}")
    defaults = HookSpec("", "")
    hook = HookSpec(name=str(data.get("name") or f"{kind}-{index}"), kind=kind, url=url,
                    timeout_s=_number(f"{where}.timeout_s", data.get("timeout_s", defaults.timeout_s)),
                    retries=int(_number(f"{where}.retries", data.get("retries", defaults.retries), whole=True)),
                    metadata={str(key): str(value) for key, value in metadata.items()})
    if not 0 < hook.timeout_s <= 300 or hook.retries > 10:
        raise InvalidInputError(where, "timeout_s must be in (0, 300] s and retries at most 10",
                                "a webhook is a quick call; wait for people with a confirm gate")
    return hook


def _check(policy: RolloutPolicy) -> None:
    steps = policy.steps
    if not steps or any(not 0 < weight <= 100 for weight in steps) or list(steps) != sorted(set(steps)):
        raise InvalidInputError("rollout_policy.steps", f"{list(steps)} is not a rising list of weights",
                                "pass canary weights in percent, rising, e.g. [10, 50, 100]")
    if any(not 1 <= step <= len(steps) for step in policy.analysis_steps):
        raise InvalidInputError("rollout_policy.analysis_steps", f"{list(policy.analysis_steps)} names a step "
                                f"outside 1..{len(steps)}", "pass 1-based step numbers, or [] for none")
    if not 1 <= policy.interval_s <= 3600:
        raise InvalidInputError("rollout_policy.interval_s", f"{policy.interval_s} s is out of range",
                                "pass 1 to 3600 s (at least two scrapes of the metrics)")
    if not 1 <= policy.intervals_per_step <= 100:
        raise InvalidInputError("rollout_policy.intervals_per_step", f"{policy.intervals_per_step} is out of range",
                                "pass 1 to 100")
    if not policy.interval_s <= policy.approval_timeout_s <= 7 * 86400:
        raise InvalidInputError("rollout_policy.approval_timeout_s", f"{policy.approval_timeout_s} s is out of range",
                                "pass interval_s up to a week")
    guard = policy.guard
    if not 0 <= guard.min_success_rate <= 100 or guard.min_requests < 1 or guard.max_no_data < 1:
        raise InvalidInputError("rollout_policy.guard", "min_success_rate is a percent, min_requests and "
                                "max_no_data at least 1", "e.g. min_success_rate: 99, min_requests: 20")
    if guard.max_p99_ms is not None and guard.max_p99_ms <= 0:
        raise InvalidInputError("rollout_policy.guard.max_p99_ms", "must be positive", "pass milliseconds, or null")


def _refuse_unknown(where: str, data: dict, known: list[str]) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidInputError(f"{where}.{unknown[0]}", "unknown key", f"use one of {', '.join(known)}")


def _number(where: str, value: Any, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        kind = "a whole number" if whole else "a number"
        raise InvalidInputError(where, f"{clipped(value)} is not {kind}", f"pass {kind}")
    return float(value)


def _whole_numbers(where: str, values: Any) -> list[int]:
    if not isinstance(values, (list, tuple)):
        raise InvalidInputError(where, f"{clipped(values)} is not a list", "pass a list such as [10, 50, 100]")
    return [int(_number(where, value, whole=True)) for value in values]
