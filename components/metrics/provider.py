"""What a live guard asks of a metrics provider, and the outcomes it can get back.

A query answers with a number, or says why it has none: "no data" (nothing matched, or the value is NaN, as
0/0 is when a version served no request) is its own outcome, never a pass; so are an unreachable provider and
an answer that is not what the provider's API promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

OK = "ok"
NO_DATA = "no data"
UNREACHABLE = "unreachable"
MALFORMED = "malformed"


@dataclass(frozen=True)
class Measurement:
    """One query's answer: its outcome, the value when there is one, and what was asked and said."""

    outcome: str
    value: float | None = None
    detail: str = ""

    @property
    def usable(self) -> bool:
        """Whether there is a finite value to hold against a threshold."""
        return self.outcome == OK and self.value is not None and math.isfinite(self.value)


class MetricsProvider(Protocol):
    """Answers one query over live traffic."""

    kind: str

    def query(self, text: str) -> Measurement:
        """The query's value now (a single number), or the outcome that says why there is none."""
