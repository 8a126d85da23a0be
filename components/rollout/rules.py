"""The rollout rules, written once: both platforms run them over their runtime, router and state store.

- deploy: the candidate starts beside the primary; it gets traffic only once it is ready; the routes
  in force before are recorded first. If it never gets ready, or routing it fails, the routes are
  put back as recorded, the candidate is removed, and the primary serves as before.
- promote: the canary must be healthy; all traffic goes to it (the router returns once that is in
  force), then the old primary is removed and the record forgotten.
- rollback: the primary (if any) must be healthy; the recorded routes are restored exactly, then the
  canary is removed.
- baseline: for an analysis, a fresh copy of the primary (its model, the canary's resources) starts
  beside both, reachable only by the track header, and is removed afterwards. Promote and rollback
  remove a copy an interrupted analysis left.
"""

from __future__ import annotations

from components.errors import InvalidInputError, PlatformError
from components.rollout.contract import Candidate, ModelRecord, RolloutRouter, StateStore, Version, VersionRuntime


class Rollout:
    """deploy / promote / rollback over one platform's parts."""

    def __init__(self, runtime: VersionRuntime, router: RolloutRouter, state: StateStore):
        self.runtime = runtime
        self.router = router
        self.state = state

    def deploy(self, candidate: Candidate) -> Version:
        """Start the candidate beside the primary with `canary_percent` of traffic (all, on a first deploy)."""
        with self.state.transaction(candidate.name) as record:
            check_deployable(candidate, record)
            before = self.router.snapshot(candidate.name)
            version = self.runtime.start(candidate)
            record.canary, record.canary_percent = version, candidate.canary_percent
            try:
                self.router.reconcile(record.route(candidate.name, candidate.canary_percent))
            except BaseException:
                self._undo_deploy(candidate.name, before, version)
                raise
            record.routes_before = before
            return version

    def promote(self, name: str) -> Version:
        """All traffic to the (healthy) canary, then remove the old primary."""
        with self.state.transaction(name) as record:
            canary = _require_canary(name, record, "promote")
            self._require_healthy(canary, "promote")
            self.router.reconcile(ModelRecord(primary=canary).route(name, 0))
            for replaced in (record.primary, record.baseline):
                if replaced is not None:
                    self.runtime.stop(replaced)
            record.primary, record.canary, record.routes_before, record.baseline = canary, None, None, None
            return canary

    def rollback(self, name: str) -> Version | None:
        """Restore the routes recorded before the rollout, then remove the canary."""
        with self.state.transaction(name) as record:
            canary = _require_canary(name, record, "roll back")
            if record.primary is not None:
                self._require_healthy(record.primary, "roll back onto")
            self.router.restore(name, record.routes_before)
            for removed in (canary, record.baseline):
                if removed is not None:
                    self.runtime.stop(removed)
            record.canary, record.routes_before, record.baseline = None, None, None
            return record.primary

    def start_baseline(self, name: str, copy: Candidate) -> Version:
        """Start `copy` (the primary's model, under the baseline's own version name) for an analysis: routed
        by the track header only, with no weight. A copy left by an interrupted analysis is replaced."""
        with self.state.transaction(name) as record:
            _require_canary(name, record, "analyse")
            if record.primary is None:
                raise InvalidInputError("name", f"{name} has no primary to copy as the baseline",
                                        "a first deploy is judged on its SLOs alone")
            self._remove_baseline(name, record)
            version = self.runtime.start(copy)
            record.baseline = version
            try:
                self.router.reconcile(record.route(name, record.canary_percent))
            except BaseException:
                record.baseline = None
                self.runtime.stop(version)
                raise
            return version

    def stop_baseline(self, name: str) -> None:
        """Remove the analysis baseline, if the model has one (routes first, then the processes or objects)."""
        with self.state.transaction(name) as record:
            self._remove_baseline(name, record)

    def _remove_baseline(self, name: str, record: ModelRecord) -> None:
        baseline, record.baseline = record.baseline, None
        if baseline is None:
            return
        if not record.empty:
            self.router.reconcile(record.route(name, record.canary_percent))
        self.runtime.stop(baseline)

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


def check_deployable(candidate: Candidate, record: ModelRecord) -> None:
    """Refuse a second canary, and the model the primary already serves unless the candidate allows it (an A/A
    rollout); a platform may check this before it takes its lock, so that a refused deploy writes nothing."""
    if record.canary is not None:
        raise InvalidInputError("name", f"{candidate.name} already has a canary ({record.canary.version})",
                                f"promote or roll back {candidate.name} first")
    if record.primary is not None and record.primary.model_digest == candidate.model_digest and \
            not candidate.allow_same_model:
        raise InvalidInputError("storage_uri", f"{candidate.name} already serves this model "
                                f"({record.primary.version})",
                                "deploy a different model version, or allow an A/A rollout (--allow-same-model)")


def _require_canary(name: str, record: ModelRecord, verb: str) -> Version:
    if record.empty:
        raise InvalidInputError("name", f"no model named {name!r} is deployed", "deploy it first")
    if record.canary is None:
        raise InvalidInputError("name", f"{name} has no canary to {verb}", "deploy a new version first")
    return record.canary
