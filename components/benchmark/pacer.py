"""Pacers decide when each hit is due, as seconds after the start of the run.

An open-loop runner sends hit i at `due(i)` whatever happened to earlier hits, and times it from
that moment: a server that stalls makes every later hit wait, and the wait shows in the latencies
(no coordinated omission). Constant and linear-ramp pacers; jitter wraps either.
"""

from __future__ import annotations

import math
import random
from typing import Protocol


class Pacer(Protocol):
    """When hits are due."""

    def due(self, hit: int) -> float:
        """Seconds after the start at which hit number `hit` (from 0) is due."""

    def rate_at(self, elapsed: float) -> float:
        """The intended rate, in hits per second, at `elapsed` seconds."""

    def hits_until(self, elapsed: float) -> float:
        """How many hits are due in the first `elapsed` seconds (the integral of the rate)."""


class ConstantPacer:
    """A fixed rate."""

    def __init__(self, rate: float):
        self.rate = rate

    def due(self, hit: int) -> float:
        """Evenly spaced hits."""
        return hit / self.rate

    def rate_at(self, elapsed: float) -> float:
        """Always the same rate."""
        return self.rate

    def hits_until(self, elapsed: float) -> float:
        """rate × elapsed."""
        return self.rate * elapsed


class LinearPacer:
    """A rate that moves linearly from `start` to `end` over `span` seconds, then holds `end`."""

    def __init__(self, start: float, end: float, span: float):
        self.start, self.end, self.span = start, end, span
        self.slope = (end - start) / span
        self._hits_in_ramp = (start + end) / 2 * span

    def due(self, hit: int) -> float:
        """Solve start·t + slope·t²/2 = hit for t during the ramp; constant `end` after it."""
        if hit >= self._hits_in_ramp:
            return self.span + (hit - self._hits_in_ramp) / self.end
        if self.slope == 0:
            return hit / self.start
        return (-self.start + math.sqrt(self.start**2 + 2 * self.slope * hit)) / self.slope

    def rate_at(self, elapsed: float) -> float:
        """The ramp's rate at `elapsed`."""
        return self.start + self.slope * min(elapsed, self.span)

    def hits_until(self, elapsed: float) -> float:
        """The area under the ramp, then under the held final rate."""
        ramp = min(elapsed, self.span)
        return self.start * ramp + self.slope * ramp**2 / 2 + self.end * max(0.0, elapsed - self.span)


class JitteredPacer:
    """Moves each due time by up to ±10% of the local interval, like fortio's -jitter."""

    def __init__(self, inner: Pacer, seed: int):
        self.inner = inner
        self._random = random.Random(seed)

    def due(self, hit: int) -> float:
        """The inner due time, nudged."""
        base = self.inner.due(hit)
        interval = 1.0 / self.inner.rate_at(base)
        return max(0.0, base + self._random.uniform(-0.1, 0.1) * interval)

    def rate_at(self, elapsed: float) -> float:
        """The inner pacer's rate."""
        return self.inner.rate_at(elapsed)

    def hits_until(self, elapsed: float) -> float:
        """Jitter moves hits, not their number."""
        return self.inner.hits_until(elapsed)


def pacer_for(qps: float, ramp_to_qps: float | None, span: float | None, jitter: bool, seed: int) -> Pacer:
    """The pacer a run's settings ask for."""
    pacer: Pacer = ConstantPacer(qps)
    if ramp_to_qps is not None:
        pacer = LinearPacer(qps, ramp_to_qps, span or 1.0)
    return JitteredPacer(pacer, seed) if jitter else pacer
