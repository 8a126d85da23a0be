"""What the rollout rules need from a platform, typed: versions, a model's record, and three protocols.

A platform (local processes, or a cluster) supplies a runtime that starts, probes and stops one
version, a router that puts routes in force and can put back what it recorded, and a state store
that keeps each model's record (which version is primary, which is canary, what the routes were
before the rollout) under a lock or an optimistic-concurrency write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Protocol

from components.rollout.progress import Progress
from components.routing.spec import TRACK_HEADER, Endpoint, Route


@dataclass(frozen=True)
class Candidate:
    """A published model version to bring up beside the primary."""

    name: str
    version: str
    model_digest: str
    storage_uri: str
    canary_percent: int = 0
    spec: object = None  # the platform's own request (the DeploymentSpec on a cluster)
    allow_same_model: bool = False  # an A/A rollout: the primary's own model under another version name
    owner: str = ""  # the run that deploys it (a pipeline run's id); only that run's steps may finish it


class VersionDetails(Protocol):
    """What a platform keeps with a version of its own: the processes serving it (local), the deployment spec it
    was started from (cluster)."""

    def to_dict(self) -> dict:
        """The JSON form kept by a state store."""


DetailsReader = Callable[[dict], VersionDetails]  # a platform's details from their JSON form


@dataclass(frozen=True)
class Version:
    """A version a platform serves: who it is, where the router reaches it, and the platform's own record."""

    name: str
    version: str
    model_digest: str
    storage_uri: str
    endpoint: Endpoint
    details: VersionDetails
    owner: str = ""  # the run that deployed it ("" when deployed by hand)

    def to_dict(self) -> dict:
        """The JSON form kept by a state store."""
        return {"name": self.name, "version": self.version, "model_digest": self.model_digest,
                "storage_uri": self.storage_uri, "endpoint": asdict(self.endpoint), "details": self.details.to_dict(),
                "owner": self.owner}

    @classmethod
    def from_dict(cls, data: dict | None, details_from: DetailsReader) -> Version | None:
        """The version a state store kept (None stays None), its details read by the platform's `details_from`."""
        if not data:
            return None
        return cls(**{**data, "endpoint": Endpoint(**data["endpoint"]), "details": details_from(data["details"])})


@dataclass
class ModelRecord:
    """One model's rollout state: its primary, its canary (and the weight it was given), the analysis
    baseline (a fresh copy of the primary, while an analysis runs), and the routes recorded before the
    rollout."""

    primary: Version | None = None
    canary: Version | None = None
    routes_before: dict | None = None  # the router's snapshot; None: no route existed
    canary_percent: int = 0
    baseline: Version | None = None
    lease_expires: float = 0.0  # the canary's owner holds the rollout until then (epoch s; renewed while it works)
    held: bool = False  # the owner's run ended holding the canary: it waits for a person's promote or rollback
    progress: Progress | None = None  # the progressive rollout of the canary (kept after it ends, for `wait`)

    @property
    def empty(self) -> bool:
        """No version serves."""
        return self.primary is None and self.canary is None

    def route(self, name: str, canary_percent: int) -> Route:
        """The route that sends `canary_percent` to the canary (all of it when there is no primary)."""
        weight = canary_percent if self.primary else 100
        return Route(name, _endpoint(self.primary), _endpoint(self.canary), weight if self.canary else 0,
                     _endpoint(self.baseline))

    def tracks(self) -> list[tuple[str, Version]]:
        """(track, version) for the primary, the canary and the baseline copy the record holds."""
        return [(track, version) for track, version in (("primary", self.primary), ("canary", self.canary),
                                                        ("baseline", self.baseline)) if version is not None]

    def routed_weights(self) -> dict[str, int]:
        """Each routed version's share of the traffic (percent) as this record gives it; the baseline copy takes
        none."""
        primary, canary = self.route("-", self.canary_percent).weights()
        return {version.version: weight for version, weight in ((self.primary, primary), (self.canary, canary))
                if version is not None}

    def to_dict(self) -> dict:
        """The JSON form kept by a state store."""
        return {"primary": self.primary and self.primary.to_dict(), "canary": self.canary and self.canary.to_dict(),
                "routes_before": self.routes_before, "canary_percent": self.canary_percent,
                "baseline": self.baseline and self.baseline.to_dict(), "lease_expires": self.lease_expires,
                "held": self.held, "progress": self.progress and self.progress.to_dict()}

    @classmethod
    def from_dict(cls, data: dict, details_from: DetailsReader) -> ModelRecord:
        """The record a state store kept (records written before the baseline copy have none), each version's
        details read by the platform's `details_from`."""
        versions = {track: Version.from_dict(data.get(track), details_from) for track in ("primary", "canary",
                                                                                           "baseline")}
        return cls(versions["primary"], versions["canary"], data.get("routes_before"),
                   int(data.get("canary_percent") or 0), versions["baseline"], float(data.get("lease_expires") or 0),
                   bool(data.get("held")), Progress.from_dict(data.get("progress")))

    def lease_holder(self, now: float) -> str:
        """The run that holds the rollout now ("" when none: no canary, deployed by hand, or its lease expired)."""
        if self.canary is None or not self.canary.owner:
            return ""
        return self.canary.owner if self.held or now < self.lease_expires else ""

    def lease_text(self, now: float) -> str:
        """Who holds the rollout, for people ("" when nobody does)."""
        holder = self.lease_holder(now)
        if not holder:
            owner = self.canary.owner if self.canary else ""
            return f"{owner}'s lease expired {now - self.lease_expires:.0f} s ago" if owner else ""
        if self.held:
            return f"held by {holder} for a person's promote or rollback"
        return f"owned by {holder} for {self.lease_expires - now:.0f} s more (renewed while it works)"


@dataclass(frozen=True)
class AnalysisSides:
    """How an analysis's load reaches the candidate and the baseline (baseline URL "" on a first deploy), how
    many instances serve each side, the baseline copy's version name when there is one, and the protocols the
    versions' server speaks (the first is its own: the load's unless the user names another)."""

    candidate_url: str
    candidate_headers: tuple[str, ...] = (f"{TRACK_HEADER}: canary",)
    baseline_url: str = ""
    baseline_headers: tuple[str, ...] = (f"{TRACK_HEADER}: primary",)
    instances: int = 1
    baseline_version: str = ""
    protocols: tuple[str, ...] = ("kserve-v1",)  # what the versions' server speaks, its own first
    candidate_model: str = ""  # the model name requests for each side carry ("": the model's own name)
    baseline_model: str = ""

    @property
    def with_baseline(self) -> bool:
        """Whether there is a baseline to compare with."""
        return bool(self.baseline_url)


class VersionRuntime(Protocol):
    """Starts, probes and stops the workloads of single versions."""

    def details_from(self, data: dict) -> VersionDetails:
        """The details this runtime keeps with a version, from their JSON form."""

    def start(self, candidate: Candidate) -> Version:
        """Bring the version up and return once it is ready; on failure remove what it made and raise."""

    def healthy(self, version: Version) -> bool:
        """Whether the version is ready to take traffic now."""

    def stop(self, version: Version) -> None:
        """Remove the version's workload (only what this runtime made for it)."""


class RolloutRouter(Protocol):
    """Puts a model's routes in force, and records them so they can be put back exactly."""

    def reconcile(self, route: Route) -> None:
        """Put the route in force; return once it is."""

    def finalize(self, name: str) -> None:
        """Remove the model's routes."""

    def snapshot(self, name: str) -> dict | None:
        """The model's routes as they are now (None when there are none), for `restore`."""

    def restore(self, name: str, snapshot: dict | None) -> None:
        """Put back exactly what `snapshot` recorded (no routes, when it is None)."""


class StateStore(Protocol):
    """Keeps each model's record; one writer at a time per model."""

    def transaction(self, name: str) -> AbstractContextManager[ModelRecord]:
        """The model's record (a new empty one if none); saved when the block ends without an error."""

    def records(self) -> Iterator[tuple[str, ModelRecord]]:
        """Every model's record, as stored."""


@dataclass(frozen=True)
class Intent:
    """A change about to be made to one model, written before it is made: the record before and after it, and
    the router's snapshot once it is in force. A command killed mid-change leaves it for the next to settle."""

    operation: str
    before: dict
    after: dict
    routes_after: dict | None

    def to_dict(self) -> dict:
        """The JSON form a journal keeps."""
        return asdict(self)


class Journal(Protocol):
    """Keeps the intent of the change in progress, per model, durably, until the change is saved."""

    def begin(self, name: str, intent: Intent) -> None:
        """Record the intent before acting."""

    def pending(self, name: str) -> Intent | None:
        """The intent a killed command left (None when the last change completed)."""

    def end(self, name: str) -> None:
        """Forget the intent: the change and the record are saved."""


class NoJournal:
    """For a platform whose state store keeps its own history (a cluster's objects): nothing to settle."""

    def begin(self, name: str, intent: Intent) -> None:
        """Nothing is kept."""

    def pending(self, name: str) -> Intent | None:
        """Never anything pending."""
        return None

    def end(self, name: str) -> None:
        """Nothing to forget."""


def _endpoint(version: Version | None) -> Endpoint | None:
    return version.endpoint if version else None
