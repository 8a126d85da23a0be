"""The live guard: one interval of a version's real traffic, judged from a metrics provider.

Each interval it asks for the request count, the success rate (percent not answered 5xx) and the p99 (ms) of
the version's workload over that interval. Fewer requests than the policy's minimum, or a value the provider
does not have, is "no data": never a pass. A provider that cannot be reached, or answers what its API does not
promise, is an "error", said as such. Only figures that break a threshold fail.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from components.metrics.provider import Measurement, MetricsProvider
from components.metrics.templates import QueryArguments, render_query
from components.progressive.policy import GuardPolicy

PASS = "pass"
FAIL = "fail"
NO_DATA = "no data"
ERROR = "error"


@dataclass(frozen=True)
class GuardReading:
    """One interval's reading of one version: the outcome, the figures it had, and why."""

    outcome: str
    at: float
    requests: float | None = None
    success_rate: float | None = None
    p99_ms: float | None = None
    detail: str = ""
    queries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON form kept in the progress."""
        return asdict(self)

    def figures(self) -> str:
        """The figures as one short line."""
        def shown(value: float | None, form: str) -> str:
            return "-" if value is None else form.format(value)

        return (f"{shown(self.requests, '{:.0f}')} requests, success {shown(self.success_rate, '{:.2f}')}%, "
                f"p99 {shown(self.p99_ms, '{:.1f}')} ms")


class LiveGuard:
    """Reads one version's figures for one interval and holds them against the policy."""

    def __init__(self, provider: MetricsProvider, policy: GuardPolicy, namespace: str, interval: str):
        self.provider = provider
        self.policy = policy
        self.namespace = namespace
        self.interval = interval

    def read(self, workload: str) -> GuardReading:
        """The workload's reading over the last interval."""
        arguments = QueryArguments(self.namespace, workload, self.interval)
        queries = {name: render_query(self.policy.query(name), arguments)
                   for name in ("request-count", "request-success-rate", "request-duration-p99")}
        count = self.provider.query(queries["request-count"])
        success = self.provider.query(queries["request-success-rate"])
        p99 = self.provider.query(queries["request-duration-p99"]) if self.policy.max_p99_ms is not None else None
        return judge(self.policy, count, success, p99, queries)


def judge(policy: GuardPolicy, count: Measurement, success: Measurement, p99: Measurement | None,
          queries: dict[str, str]) -> GuardReading:
    """The reading the three measurements make under the policy."""
    requests, rate, latency = _value(count), _value(success), _value(p99) if p99 else None

    def reading(outcome: str, detail: str = "") -> GuardReading:
        return GuardReading(outcome, time.time(), requests, rate, latency, detail, queries)

    broken = [m for m in (count, success, p99) if m is not None and m.outcome in ("unreachable", "malformed")]
    if broken:
        return reading(ERROR, broken[0].detail)
    if requests is None or requests < policy.min_requests:
        seen = "no requests" if requests is None else f"{requests:.0f} requests"
        return reading(NO_DATA, f"{seen} in the interval; the guard needs {policy.min_requests}")
    if rate is None:
        return reading(NO_DATA, f"no success rate ({success.detail})")
    if rate < policy.min_success_rate:
        return reading(FAIL, f"success rate {rate:.2f}% is under {policy.min_success_rate:g}%")
    if p99 is not None and policy.max_p99_ms is not None:
        if latency is None:
            return reading(NO_DATA, f"no p99 ({p99.detail})")
        if latency > policy.max_p99_ms:
            return reading(FAIL, f"p99 {latency:.1f} ms is over {policy.max_p99_ms:g} ms")
    return reading(PASS)


def _value(measurement: Measurement) -> float | None:
    return measurement.value if measurement.usable else None
