"""The progressive rollout, written once over the platform protocol, as Flagger's controller is over its routers.

A new rollout waits at the confirm-rollout gates, calls the pre-rollout hooks (a failure rolls back before any
traffic moves), then takes the policy's steps. At each step the router gives the canary the step's weight and
the rollout hooks are called; where the policy asks, the side-by-side analysis runs; the live guard reads the
canary's real traffic every interval (also while the analysis runs) until the step has had its passing
intervals. A failed guard interval, analysis, rollout hook, or a rollback hook's yes, rolls back at once. A step
that cannot decide (no data for too long, an INCONCLUSIVE analysis, a gate nobody opens) follows the gate
policy's `on_inconclusive`: rollback, or hold for a person. After the last step the confirm-promotion gates
must open (a webhook's yes, or `meshserve approve`), then the canary is promoted.

Every reading, verdict and phase is saved with the model's rollout record before the next action, and the
driver reports in at every save. A driver killed at any point is resumed by the next one (the same command, or
`meshserve resume`): it picks up the step under way, re-applies its weight (nothing is written when it is in
force), and never restarts at step 0 nor leaves the routes half-changed (the rollout rules settle an
interrupted weight change first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from components.analysis.run import Analysis, Look
from components.errors import InvalidInputError
from components.gate.decision import PROMOTE, ROLLBACK
from components.platform.protocol import ModelRef, Platform
from components.progressive import guard as g
from components.progressive.guard import LiveGuard
from components.progressive.hooks import HookCall, RolloutFacts, call, payload
from components.progressive.policy import RolloutPolicy
from components.rollout.progress import (
    FAILED,
    FAILED_STEP,
    HELD,
    PASSED,
    PROGRESSING,
    SUCCEEDED,
    UNDECIDED,
    WAITING_PROMOTION,
    Driver,
    Progress,
    StepRecord,
)

Analyser = Callable[[Callable[[Look], None]], Analysis]  # runs the side-by-side analysis, calling back each look


class StepEnded(Exception):
    """A step (or the rollout) is decided before its time: failed, or undecided."""

    def __init__(self, verdict: str, reason: str):
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason


@dataclass
class ProgressiveRollout:
    """One model's progressive rollout on one platform."""

    platform: Platform
    model: ModelRef
    policy: RolloutPolicy
    guard: LiveGuard
    analyse: Analyser
    owner: str
    on_inconclusive: str = "rollback"
    first_deploy: bool = False  # no primary: no steps to take, no production traffic to guard (as Flagger's
    # initialization), only the analysis (the SLOs) and the gates
    report: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    progress: Progress = field(init=False)
    analyses: list[Analysis] = field(init=False, default_factory=list)  # this driver's, in order

    # the run

    def drive(self, fresh: Progress) -> Progress:
        """Take the rollout to its end from where the record says it stands (`fresh`: the progress of a rollout
        not begun yet); return the final progress."""
        progress = self._take_over(fresh)
        if progress.finished:
            self.report(f"{self.model.name} {progress.version}: the rollout already ended ({progress.phase}: "
                        f"{progress.message})")
            return progress
        try:
            if not progress.steps:
                self._begin()
            for index in range(self.progress.step, len(self.steps)):
                self._step(index)
            self._await_promotion()
        except StepEnded as ended:
            return self._end_on(ended)
        return self._finish(SUCCEEDED, "every step passed; promoted")

    def _take_over(self, fresh: Progress) -> Progress:
        """The stored progress of this canary (a resume), else `fresh`; refused while another live driver has it."""
        stored = self.platform.progress(self.model)
        now = time.time()
        if stored is not None and stored.version == fresh.version:
            if not stored.finished and stored.driver.alive(self.stale_after_s, now) \
                    and not stored.driver.is_this_process():
                raise InvalidInputError("name", f"{self.model.name}'s rollout is driven by pid {stored.driver.pid} on "
                                        f"{stored.driver.host} (seen {now - stored.driver.seen:.0f} s ago)",
                                        "follow it with `meshserve status --watch`, or wait for it to end")
            self.progress = stored
            if not stored.finished:
                stored.resumed += 1
                at = stored.steps[-1].weight if stored.steps else 0
                self.report(f"resuming {self.model.name} {stored.version} at step {stored.step + 1} of "
                            f"{len(self.steps)} (weight {at}%), phase {stored.phase}")
                self._save()
            return stored
        self.progress = fresh
        self.progress.started = now
        self._save()
        return fresh

    @property
    def steps(self) -> tuple[int, ...]:
        """The traffic steps: the policy's, or all traffic at once on a first deploy."""
        return (100,) if self.first_deploy else self.policy.steps

    @property
    def stale_after_s(self) -> float:
        """How long a driver may be silent before another may take over (it saves at least every interval)."""
        return 3 * self.policy.interval_s + 30

    def _begin(self) -> None:
        """A new rollout: the confirm-rollout gates, then the pre-rollout hooks, before any traffic moves."""
        self._event(f"new rollout of {self.progress.version}: steps {list(self.policy.steps)}")
        self._await_gates("confirm-rollout")
        self._call_required("pre-rollout", "; no traffic was moved")

    def _step(self, index: int) -> None:
        """One traffic step, from setting its weight to its verdict."""
        weight = self.steps[index]
        record = self.progress.current()
        if record is None:
            record = StepRecord(index, weight, started=time.time())
            self.progress.steps.append(record)
        self.progress.step, self.progress.weight, self.progress.phase = index, weight, PROGRESSING
        if not self.first_deploy:
            self.platform.set_weight(self.model, weight, self.owner)
        self.report(f"step {index + 1}/{len(self.steps)}: {self.progress.version} at {weight}%")
        self._event(f"advance {self.progress.version} canary weight {weight}")
        self._call_required("rollout", f" at step {index + 1}")
        self._save()
        if index + 1 in self.policy.analysis_steps and record.analysis is None:
            self._analyse(record)
        while not self.first_deploy and _count(record, g.PASS) < self.policy.intervals_per_step:
            self._wait_for_interval(record)
            self._check_interval(record)
        record.verdict, record.ended = PASSED, time.time()
        record.reason = f"{_count(record, g.PASS)} guard interval(s) passed" + (
            f"; analysis {record.analysis['decision']}" if record.analysis else "")
        self.progress.step = index + 1
        self._save()

    def _call_required(self, kind: str, where: str) -> None:
        """Call the hooks of `kind` in order; the first that still fails after its retries fails the rollout."""
        for hook in self.policy.hooks_of(kind):
            answer = call(hook, payload(hook, self._facts()))
            self._record_hook(answer)
            if not answer.ok:
                raise StepEnded(FAILED_STEP, f"{kind} hook {hook.name} failed after {answer.attempts} attempt(s) "
                                f"({answer.status or answer.detail}){where}")

    def _analyse(self, record: StepRecord) -> None:
        """The side-by-side analysis at this step, the guard reading real traffic at every look meanwhile."""
        against = "its SLOs alone (a first deploy)" if self.first_deploy else "a fresh copy of the primary"
        self.report(f"  analysis at step {record.index + 1}: the canary against {against}")

        def each_look(look: Look) -> None:
            self.report(f"  look {look.index}: {look.decision}")
            record.look = {"index": look.index, "decision": look.decision, "measured_s": round(look.measured_s, 1)}
            if not self.first_deploy and time.time() >= _last_reading_at(record) + self.policy.interval_s:
                self._check_interval(record)
            else:
                self._save()

        analysis = self.analyse(each_look)
        self.analyses.append(analysis)
        decision = analysis.verdict.decision
        record.analysis = analysis_summary(analysis)
        self._save()
        if decision == ROLLBACK:
            raise StepEnded(FAILED_STEP, f"the analysis at step {record.index + 1} failed: "
                            f"{analysis.verdict.summary()}")
        if decision != PROMOTE:
            raise StepEnded(UNDECIDED, f"the analysis at step {record.index + 1} could not decide: "
                            f"{analysis.verdict.summary()}")

    def _wait_for_interval(self, record: StepRecord) -> None:
        """Sleep until an interval has passed since the last reading (or the step began)."""
        due = _last_reading_at(record) + self.policy.interval_s
        self.sleep(max(0.0, due - time.time()))

    def _check_interval(self, record: StepRecord) -> None:
        """One guard interval: read the canary (and the primary, shown beside it), ask the rollback hooks, save."""
        reading = self.guard.read(self.platform.workload(self.model, "canary"))
        primary = self.guard.read(self.platform.workload(self.model, "primary"))
        record.guard.append({**reading.to_dict(), "primary": primary.to_dict()})
        self.report(f"  guard: canary {reading.outcome}: {reading.figures()}"
                    f"{'; ' + reading.detail if reading.detail else ''} | primary {primary.figures()}")
        self.platform.renew(self.model, self.owner)
        aborted = self._asked_to_roll_back()
        self._save()
        if aborted is not None:
            raise StepEnded(FAILED_STEP, f"rollback hook {aborted.name} said yes")
        if reading.outcome == g.FAIL:
            raise StepEnded(FAILED_STEP, f"the live guard failed at step {record.index + 1}: {reading.detail}")
        silent = _count(record, g.NO_DATA) + _count(record, g.ERROR)
        if reading.outcome != g.PASS and silent >= self.policy.guard.max_no_data:
            raise StepEnded(UNDECIDED, f"the live guard had no data for {silent} interval(s) at step "
                            f"{record.index + 1} (last: {reading.detail})")

    def _asked_to_roll_back(self) -> HookCall | None:
        """The first rollback hook that says yes (asked once, no retries: it is asked again next interval)."""
        for hook in self.policy.hooks_of("rollback"):
            answer = call(hook, payload(hook, self._facts()), retries=0)
            if answer.ok:
                self._record_hook(answer)
                return answer
        return None

    def _await_promotion(self) -> None:
        """The confirm-promotion gates: a webhook's yes, or a person's `meshserve approve`."""
        if not self.policy.hooks_of("confirm-promotion"):
            return
        self.progress.phase = WAITING_PROMOTION
        self._save()
        self._event(f"{self.progress.version} waits for approval to be promoted")
        self._await_gates("confirm-promotion")

    def _await_gates(self, kind: str) -> None:
        """Ask the gates of `kind` once an interval until one says yes (an approval in the record opens a
        confirm-promotion gate), for at most the policy's approval timeout; the guard keeps reading meanwhile."""
        gates = self.policy.hooks_of(kind)
        if not gates:
            return
        deadline = time.time() + self.policy.approval_timeout_s
        self.report(f"  waiting at {kind} ({', '.join(g.name for g in gates)}): at most "
                    f"{self.policy.approval_timeout_s:g} s")
        while True:
            if kind == "confirm-promotion" and self._approved():
                self.report("  approved (meshserve approve)")
                return
            for gate in gates:
                if gate.url:
                    answer = call(gate, payload(gate, self._facts()), retries=0)
                    if answer.ok:
                        self._record_hook(answer)
                        self.report(f"  {gate.name} said yes")
                        return
            if time.time() >= deadline:
                raise StepEnded(UNDECIDED, f"nobody opened the {kind} gate in {self.policy.approval_timeout_s:g} s")
            aborted = self._asked_to_roll_back()
            self._save()
            if aborted is not None:
                raise StepEnded(FAILED_STEP, f"rollback hook {aborted.name} said yes while waiting at {kind}")
            self.sleep(min(self.policy.interval_s, max(0.0, deadline - time.time())))

    def _approved(self) -> bool:
        stored = self.platform.progress(self.model)
        if stored is not None and stored.approved:
            self.progress.approved = True
        return self.progress.approved

    # the end

    def _end_on(self, ended: StepEnded) -> Progress:
        record = self.progress.current()
        if record is not None:
            record.verdict, record.reason, record.ended = ended.verdict, ended.reason, time.time()
        if ended.verdict == UNDECIDED and self.on_inconclusive == "hold":
            return self._finish(HELD, f"{ended.reason}; held at {self.progress.weight}% for a person")
        return self._finish(FAILED, f"{ended.reason}; rolled back")

    def _finish(self, phase: str, message: str) -> Progress:
        """Promote, roll back or hold, with the final progress in the same write; then post-rollout and events."""
        self.progress.phase, self.progress.message, self.progress.updated = phase, message, time.time()
        if phase == SUCCEEDED:
            self.progress.weight = 100
            self.platform.promote(self.model, self.owner, outcome=self.progress)
        elif phase == FAILED:
            self.progress.weight = 0
            self.platform.rollback(self.model, self.owner, outcome=self.progress)
        else:
            self.platform.hold(self.model, self.owner, outcome=self.progress)
        self.report(f"{self.model.name} {self.progress.version}: {phase}: {message}")
        if phase != HELD:
            for hook in self.policy.hooks_of("post-rollout"):
                self._record_hook(call(hook, payload(hook, self._facts())), keep=False)
        self._event(message, "Normal" if phase == SUCCEEDED else "Warning")
        return self.progress

    # records and notifications

    def _save(self) -> None:
        self.progress.driver = Driver.this_process()
        self.progress.updated = time.time()
        self.platform.save_progress(self.model, self.progress)

    def _facts(self) -> RolloutFacts:
        return RolloutFacts(self.model.name, self.model.namespace, self.progress.version, self.progress.phase,
                            min(self.progress.step + 1, len(self.steps)), self.progress.weight)

    def _record_hook(self, answer: HookCall, keep: bool = True) -> None:
        self.report(f"  hook {answer.name} ({answer.kind}): {'yes' if answer.ok else 'no'} "
                    f"({answer.status or answer.detail}, {answer.attempts} attempt(s))")
        record = self.progress.current() or (self.progress.steps[-1] if self.progress.steps else None)
        if keep and record is not None:
            record.hooks.append(answer.to_dict())

    def _event(self, message: str, event_type: str = "Normal") -> None:
        for hook in self.policy.hooks_of("event"):
            call(hook, payload(hook, self._facts(), message, event_type))


def analysis_summary(analysis: Analysis) -> dict:
    """What a step keeps of its analysis: the decision, why, how long it measured, and the last look's checks."""
    trace = analysis.to_dict()["analysis"]
    last = analysis.looks[-1] if analysis.looks else None
    return {"decision": analysis.verdict.decision, "summary": analysis.verdict.summary(),
            "stopped": analysis.stopped, "looks": trace["looks_taken"], "measured_s": trace["measured_s_per_side"],
            "checks": [{"name": check.name, "status": check.status, "detail": check.reason}
                       for check in (last.checks if last else analysis.verdict.checks)]}


def _count(record: StepRecord, outcome: str) -> int:
    return sum(1 for reading in record.guard if reading["outcome"] == outcome)


def _last_reading_at(record: StepRecord) -> float:
    return record.guard[-1]["at"] if record.guard else record.started
