"""The rollout rules, written once: both platforms run them over their runtime, router and state store.

- deploy: the candidate starts beside the primary; it gets traffic only once it is ready; the routes
  in force before are recorded first. If it never gets ready, or routing it fails, the routes are
  put back as recorded, the candidate is removed, and the primary serves as before.
- promote: the canary must be healthy; all traffic goes to it (the router returns once that is in
  force), then the old primary is removed and the record forgotten.
- rollback: the primary (if any) must be healthy; the recorded routes are restored exactly, then the
  canary is removed.
- ownership: a canary keeps the run that deployed it, and that run holds the rollout under a lease from
  deploy to promote or rollback, renewed while it works (the analysis renews it at every look). A promote or
  rollback that names an owner acts only on that owner's canary, so one run's exit handler never rolls back
  another run's candidate; another run's deploy is refused naming the owner; a person needs `take_over` while
  the lease is live. A run that dies stops renewing: once its lease expires, the next run's deploy takes the
  rollout over (it rolls the dead run's canary back first). A run that ends holding its canary (the analysis
  could not decide, and the policy says hold) leaves it held for a person: it never expires.
- baseline: for an analysis, a fresh copy of the primary (its model, the canary's resources) starts
  beside both, reachable only by the track header, and is removed afterwards. Promote and rollback
  remove a copy an interrupted analysis left.
- interruptions: every change is written to the journal (the record before and after, the routes after)
  before it is made. A command killed mid-change (kill -9) leaves the intent; the next command on that
  model settles it first: if the router already holds the routes after, the change is finished (what it
  replaced is removed and the record saved), otherwise it is undone (the recorded routes are put back and
  what it started is removed).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from dataclasses import asdict, is_dataclass
from typing import Any

from components.errors import InvalidInputError, PlatformError
from components.rollout.contract import (
    Candidate,
    Intent,
    Journal,
    ModelRecord,
    NoJournal,
    RolloutRouter,
    StateStore,
    Version,
    VersionRuntime,
)
from components.rollout.progress import Progress
from components.routing.spec import Endpoint, Route

LEASE_ENV = "MESHSERVE_ROLLOUT_LEASE_S"
LEASE_S = 900.0  # a run's hold on its rollout without renewal; the analysis renews it at every look
log = logging.getLogger(__name__)


def lease_seconds() -> float:
    """How long a run holds its rollout without renewing it: $MESHSERVE_ROLLOUT_LEASE_S, else 15 minutes."""
    from components.inputs import seconds_from_env

    return seconds_from_env(LEASE_ENV) or LEASE_S


class Rollout:
    """deploy / promote / rollback over one platform's parts."""

    def __init__(self, runtime: VersionRuntime, router: RolloutRouter, state: StateStore,
                 journal: Journal | None = None):
        self.runtime = runtime
        self.router = router
        self.state = state
        self.journal = journal or NoJournal()

    def deploy(self, candidate: Candidate) -> Version:
        """Start the candidate beside the primary with `canary_percent` of traffic (all, on a first deploy)."""
        name = candidate.name
        with self.state.transaction(name) as record:
            self.settle(name, record)
            now = time.time()
            check_deployable(candidate, record, now)
            if record.canary is not None:  # a dead run's: its lease expired (check_deployable refuses the rest)
                log.warning("%s: %s; rolling its canary %s back to take the rollout over", name,
                            record.lease_text(now), record.canary.version)
                self._roll_back(name, record)
            before = self.router.snapshot(name)
            version = dataclasses.replace(self.runtime.start(candidate), owner=candidate.owner)
            after = _changed(record, canary=version, canary_percent=candidate.canary_percent, routes_before=before,
                             lease_expires=now + lease_seconds() if candidate.owner else 0.0, held=False,
                             progress=None)
            self._begin(name, "deploy", record, after, _snapshot_of(after, name))
            try:
                self.router.reconcile(after.route(name, candidate.canary_percent))
            except BaseException:
                self._undo_deploy(name, before, version)
                self.journal.end(name)
                raise
            _assign(record, after)
        self.journal.end(name)
        return version

    def promote(self, name: str, owner: str = "", take_over: bool = False, outcome: Progress | None = None) -> Version:
        """All traffic to the (healthy) canary, then remove the old primary (`owner`: only that run's canary; a
        person, no owner, needs `take_over` while a run's lease is live; `outcome`: the progressive rollout's
        final progress, kept with the record in the same write)."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            canary = _require_canary(name, record, "promote", owner)
            _require_free(name, record, "promote", owner, take_over)
            self._require_healthy(canary, "promote")
            after = ModelRecord(primary=canary, progress=outcome or record.progress)
            self._begin(name, "promote", record, after, _snapshot_of(after, name))
            self.router.reconcile(after.route(name, 0))
            self._stop_replaced(record, after)
            _assign(record, after)
        self.journal.end(name)
        return canary

    def rollback(self, name: str, owner: str = "", take_over: bool = False,
                 outcome: Progress | None = None) -> Version | None:
        """Restore the routes recorded before the rollout, then remove the canary (`owner`: only that run's; a
        person, no owner, needs `take_over` while a run's lease is live; `outcome`: the progressive rollout's
        final progress)."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            _require_canary(name, record, "roll back", owner)
            _require_free(name, record, "roll back", owner, take_over)
            if outcome is not None:
                record.progress = outcome
            self._roll_back(name, record)
        self.journal.end(name)
        return record.primary

    def set_weight(self, name: str, percent: int, owner: str = "", take_over: bool = False) -> None:
        """Give the canary `percent` of the traffic (a progressive rollout's step), renewing the owner's lease;
        a weight already in force is left as it is (nothing is written)."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            _require_canary(name, record, "set the weight of", owner)
            _require_free(name, record, "set the weight of", owner, take_over)
            if record.primary is None:
                raise InvalidInputError("canary_percent", f"{name} has no primary: its canary takes all traffic",
                                        "a first deploy has no traffic to shift; judge it on its SLOs")
            Route(name, Endpoint("-", "-", "-"), canary_weight=percent).validated()
            lease = time.time() + lease_seconds() if owner and not record.held else record.lease_expires
            after = _changed(record, canary_percent=percent, lease_expires=lease)
            routes = _snapshot_of(after, name)
            if record.canary_percent == percent and _plain(self.router.snapshot(name)) == routes:
                record.lease_expires = lease
                return
            self._begin(name, "weight change", record, after, routes)
            self.router.reconcile(after.route(name, percent))
            _assign(record, after)
        self.journal.end(name)

    def rescale(self, name: str, track: str, resized: Version, retired: Version | None) -> None:
        """Serve `track` with `resized` (its version, by other replicas: a scale up or down) and put its routes in
        force, journaled as every change; then stop `retired`, the replicas the router no longer sends to. A
        track that no longer holds that version (a promote or rollback came first) is refused."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            current = dict(record.tracks()).get(track)
            if current is None or current.version != resized.version:
                raise PlatformError("name", f"{name}'s {track} is no longer {resized.version}",
                                    "look at `meshserve status` and scale what serves now")
            after = _changed(record, **{track: resized})
            self._begin(name, f"scale of the {track}", record, after, _snapshot_of(after, name))
            self.router.reconcile(after.route(name, record.canary_percent))
            if retired is not None:
                self.runtime.stop(retired)
            _assign(record, after)
        self.journal.end(name)

    def save_progress(self, name: str, progress: Progress) -> None:
        """Keep the progressive rollout's progress with the record of the canary it drives."""
        with self.state.transaction(name) as record:
            canary = _require_canary(name, record, "record the progress of")
            if canary.version != progress.version:
                raise InvalidInputError("name", f"{name}'s canary is {canary.version}, not {progress.version}",
                                        "resume the rollout of the canary deployed now")
            approved = record.progress is not None and record.progress.version == progress.version and \
                record.progress.approved
            progress.approved = progress.approved or approved  # a person's approval is never written over
            record.progress = progress

    def approve(self, name: str) -> Progress:
        """A person's yes to the promotion of the canary's progressive rollout (its confirm-promotion gate)."""
        with self.state.transaction(name) as record:
            canary = _require_canary(name, record, "approve")
            progress = record.progress
            if progress is None or progress.finished or progress.version != canary.version:
                raise InvalidInputError("name", f"{name}'s canary has no progressive rollout under way",
                                        "start one with `meshserve rollout`; a plain canary is promoted by hand")
            progress.approved = True
            return progress

    def renew(self, name: str, owner: str) -> None:
        """Extend the owner's lease on its rollout (it is still at work); a lease it lost is NotOwnedError."""
        with self.state.transaction(name) as record:
            _require_canary(name, record, "renew the lease of", owner)
            if not record.held:
                record.lease_expires = time.time() + lease_seconds()

    def hold(self, name: str, owner: str, outcome: Progress | None = None) -> None:
        """Leave the owner's canary where it is, for a person: the lease no longer expires (`outcome`: the
        progressive rollout's final progress)."""
        with self.state.transaction(name) as record:
            _require_canary(name, record, "hold", owner)
            record.held = True
            if outcome is not None:
                record.progress = outcome

    def _roll_back(self, name: str, record: ModelRecord) -> None:
        """Restore the recorded routes and remove the canary, inside the caller's transaction (which ends the
        journal's intent once the record is saved)."""
        if record.primary is not None:
            self._require_healthy(record.primary, "roll back onto")
        after = ModelRecord(primary=record.primary, progress=record.progress)
        self._begin(name, "rollback", record, after, record.routes_before)
        self.router.restore(name, record.routes_before)
        self._stop_replaced(record, after)
        _assign(record, after)

    def settle(self, name: str, record: ModelRecord) -> str:
        """Finish or undo the change a killed command left on this model (call with its record, under the
        state's lock); return what was done ("" when nothing was pending)."""
        intent = self.journal.pending(name)
        if intent is None:
            return ""
        before = ModelRecord.from_dict(intent.before, self.runtime.details_from)
        after = ModelRecord.from_dict(intent.after, self.runtime.details_from)
        if _plain(record.to_dict()) == _plain(intent.after):
            outcome = "it had completed"
        elif _plain(self.router.snapshot(name)) == _plain(intent.routes_after):
            self._stop_replaced(before, after)
            _assign(record, after)
            outcome = "finished it"
        else:
            self.router.restore(name, _snapshot_of(before, name))
            self._stop_replaced(after, before)
            _assign(record, before)
            outcome = "undid it"
        self.journal.end(name)
        return f"an interrupted {intent.operation} of {name}: {outcome}"

    def _begin(self, name: str, operation: str, record: ModelRecord, after: ModelRecord,
               routes_after: dict | None) -> None:
        self.journal.begin(name, Intent(operation, record.to_dict(), after.to_dict(), _plain(routes_after)))

    def _stop_replaced(self, before: ModelRecord, after: ModelRecord) -> None:
        """Stop every version `before` holds that `after` does not."""
        kept = {version.version for version in (after.primary, after.canary, after.baseline) if version}
        for version in (before.primary, before.canary, before.baseline):
            if version is not None and version.version not in kept:
                self.runtime.stop(version)

    def start_baseline(self, name: str, candidate: Candidate) -> Version:
        """Start `candidate` (the primary's model, under the baseline's own version name) for an analysis:
        routed by the track header only, with no weight. A copy left by an interrupted analysis is replaced."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            _require_canary(name, record, "analyse")
            if record.primary is None:
                raise InvalidInputError("name", f"{name} has no primary to copy as the baseline",
                                        "a first deploy is judged on its SLOs alone")
            self._remove_baseline(name, record)
            version = self.runtime.start(candidate)
            after = _changed(record, baseline=version)
            self._begin(name, "analysis baseline", record, after, _snapshot_of(after, name))
            try:
                self.router.reconcile(after.route(name, record.canary_percent))
            except BaseException:
                self.runtime.stop(version)
                self.journal.end(name)
                raise
            _assign(record, after)
        self.journal.end(name)
        return version

    def stop_baseline(self, name: str) -> None:
        """Remove the analysis baseline, if the model has one (routes first, then the processes or objects)."""
        with self.state.transaction(name) as record:
            self.settle(name, record)
            self._remove_baseline(name, record)
        self.journal.end(name)

    def _remove_baseline(self, name: str, record: ModelRecord) -> None:
        if record.baseline is None:
            return
        after = _changed(record, baseline=None)
        self._begin(name, "baseline removal", record, after, _snapshot_of(after, name))
        if not after.empty:
            self.router.reconcile(after.route(name, record.canary_percent))
        self._stop_replaced(record, after)
        _assign(record, after)

    def _require_healthy(self, version: Version, verb: str) -> None:
        if not self.runtime.healthy(version):
            raise PlatformError("health", f"cannot {verb} {version.name} {version.version}: it is not ready",
                                "nothing was changed; check the version (status), then retry or roll back")

    def _undo_deploy(self, name: str, before: dict | None, version: Version) -> None:
        """Put the recorded routes back and remove the candidate (the error that got here propagates)."""
        try:
            self.router.restore(name, before)
        finally:
            self.runtime.stop(version)


def check_deployable(candidate: Candidate, record: ModelRecord, now: float) -> None:
    """Refuse a second canary (unless a dead run's, whose lease expired: that one is taken over), and the model
    the primary already serves unless the candidate allows it (an A/A rollout); a platform may check this before
    it takes its lock, so that a refused deploy writes nothing."""
    canary = record.canary
    if canary is not None and (record.lease_holder(now) or not canary.owner):
        holder = record.lease_text(now) or "deployed by hand"
        raise InvalidInputError("name", f"{candidate.name} already has a canary ({canary.version}, {holder})",
                                f"wait for that rollout to finish, or promote or roll back {candidate.name} first")
    if record.primary is not None and record.primary.model_digest == candidate.model_digest and \
            not candidate.allow_same_model:
        raise InvalidInputError("storage_uri", f"{candidate.name} already serves this model "
                                f"({record.primary.version})",
                                "deploy a different model version, or allow an A/A rollout (--allow-same-model)")


def _changed(record: ModelRecord, **changes) -> ModelRecord:
    """A copy of the record with some fields changed."""
    changed = copy.copy(record)
    for key, value in changes.items():
        setattr(changed, key, value)
    return changed


def _assign(record: ModelRecord, source: ModelRecord) -> None:
    """Make `record` (the transaction's) hold what `source` holds."""
    record.primary, record.canary, record.baseline = source.primary, source.canary, source.baseline
    record.routes_before, record.canary_percent = source.routes_before, source.canary_percent
    record.lease_expires, record.held = source.lease_expires, source.held
    record.progress = source.progress


def _snapshot_of(record: ModelRecord, name: str) -> dict | None:
    """The router snapshot of the record's route (None when no version serves)."""
    if record.empty:
        return None
    return _plain(record.route(name, record.canary_percent))


def _plain(value: Any) -> Any:
    """A route, snapshot or record as plain JSON data, so that two forms of the same routes compare equal."""
    return json.loads(json.dumps(asdict(value) if is_dataclass(value) and not isinstance(value, type) else value))


def _require_canary(name: str, record: ModelRecord, verb: str, owner: str = "") -> Version:
    if record.empty:
        raise InvalidInputError("name", f"no model named {name!r} is deployed", "deploy it first")
    if record.canary is None:
        raise InvalidInputError("name", f"{name} has no canary to {verb}", "deploy a new version first")
    if owner and record.canary.owner != owner:
        raise NotOwnedError("name", f"{name}'s canary {record.canary.version} was deployed by "
                            f"{record.canary.owner or 'hand'}, not by {owner}",
                            f"{verb} it from its own run or by hand")
    return record.canary


def _require_free(name: str, record: ModelRecord, verb: str, owner: str, take_over: bool) -> None:
    """A person (no owner) may not act on a rollout a live run holds, unless taking it over."""
    now = time.time()
    if not owner and not take_over and record.lease_holder(now) and not record.held:
        raise LeaseHeldError("name", f"{name}'s rollout is {record.lease_text(now)}",
                             f"let that run finish, or {verb} it anyway with --take-over")


class LeaseHeldError(InvalidInputError):
    """A live run holds the rollout."""


class NotOwnedError(InvalidInputError):
    """The canary belongs to another run."""
