"""A progressive rollout's progress, kept in the model's rollout record (the platform's state store) so that a
killed driver is resumed where it stood: its phase (Flagger's names), the step and weight it reached, what each
step saw and decided, who drives it, and whether a person approved the promotion."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field

PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
HELD = "Held"
FINISHED = (SUCCEEDED, FAILED, HELD)

# Step verdicts
PASSED = "pass"
FAILED_STEP = "fail"
UNDECIDED = "inconclusive"


@dataclass
class StepRecord:
    """One traffic step: its weight, each guard interval's reading, the analysis (when it ran there), the hooks
    called, and the verdict ("" while it runs)."""

    index: int
    weight: int
    started: float = 0.0
    ended: float = 0.0
    verdict: str = ""
    reason: str = ""
    guard: list[dict] = field(default_factory=list)
    analysis: dict | None = None
    look: dict | None = None  # the analysis's latest look while it runs (index, decision, seconds per side)
    hooks: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> StepRecord:
        """A step as the state store kept it."""
        return cls(**data)


@dataclass
class Driver:
    """The process driving the rollout, and when it last reported in."""

    host: str = ""
    pid: int = 0
    seen: float = 0.0

    @classmethod
    def this_process(cls) -> Driver:
        """This process, now."""
        return cls(socket.gethostname(), os.getpid(), time.time())

    def alive(self, stale_after_s: float, now: float) -> bool:
        """Whether it still drives: it reported in lately and, on this host, its process is still there."""
        if not self.pid or now - self.seen > stale_after_s:
            return False
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def is_this_process(self) -> bool:
        """Whether this process is the driver."""
        return self.host == socket.gethostname() and self.pid == os.getpid()


@dataclass
class Progress:
    """Where one candidate's progressive rollout stands."""

    version: str
    phase: str = PROGRESSING
    step: int = 0  # the step under way (an index into the policy's steps); len(steps) once they all passed
    weight: int = 0
    owner: str = ""
    policy: dict = field(default_factory=dict)  # the rollout policy, so that `resume` needs no file
    gate: dict = field(default_factory=dict)  # the gate policy of its analyses
    load: dict = field(default_factory=dict)  # the analyses' synthetic load
    steps: list[StepRecord] = field(default_factory=list)
    driver: Driver = field(default_factory=Driver)
    approved: bool = False
    message: str = ""
    started: float = 0.0
    updated: float = 0.0
    resumed: int = 0  # how many times a new driver picked it up

    @property
    def finished(self) -> bool:
        """Whether the rollout has ended (promoted, rolled back, or held for a person)."""
        return self.phase in FINISHED

    def current(self) -> StepRecord | None:
        """The record of the step under way (None before the first and after the last)."""
        return next((step for step in self.steps if step.index == self.step and not step.verdict), None)

    def to_dict(self) -> dict:
        """The JSON form kept in the rollout record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Progress | None:
        """The progress the record kept (None stays None)."""
        if not data:
            return None
        return cls(**{**data, "steps": [StepRecord.from_dict(step) for step in data.get("steps", [])],
                      "driver": Driver(**data.get("driver", {}))})
