"""The one seam between the steps and a platform: what every platform (local, kubernetes) does, with typed
requests. Steps and commands call these through the registry (components/platform/registry.py) and never ask
which platform they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from components.deployment.spec import DeploymentSpec
from components.rollout.contract import AnalysisSides, Version


@dataclass(frozen=True)
class ModelRef:
    """A model on a platform: its name and namespace (the local platform has one namespace, and ignores it)."""

    name: str
    namespace: str = "default"


@dataclass(frozen=True)
class ClientEndpoint:
    """How a client (the benchmark step) reaches a model: the URL and the headers it must send."""

    url: str
    headers: dict[str, str]

    def header_lines(self) -> list[str]:
        """The headers as `Name: value` lines (bench's -H form)."""
        return [f"{key}: {value}" for key, value in self.headers.items()]


@dataclass(frozen=True)
class DeployRequest:
    """A published version to bring up as the canary, and how a cluster serves it (the local platform stands in
    for the runtime, router and autoscaler with its model servers and nginx, and reads name, version, storage and
    weight only)."""

    spec: DeploymentSpec
    replicas: int | None = None  # local: model-server processes (a cluster scales by spec.autoscaling)
    allow_same_model: bool = False  # an A/A rollout: the primary's own model under another version name
    owner: str = ""  # the run that deploys it; only that run's steps may finish it


@dataclass(frozen=True)
class Deployed:
    """What a deploy brought up: the version; how clients reach the model (split by the router), the candidate
    and the primary beside it (by their tracks); and the primary's storage ("" on a first deploy)."""

    version: Version
    clients: ClientEndpoint
    candidate: ClientEndpoint
    baseline: ClientEndpoint
    baseline_storage_uri: str = ""


class Platform(Protocol):
    """What every step and command asks of a platform."""

    def deploy(self, request: DeployRequest) -> Deployed:
        """Start the version beside the primary; it gets the spec's canary_percent once ready (all on a first
        deploy). A failed deploy leaves the primary serving as it was."""

    def promote(self, model: ModelRef, owner: str = "") -> Version:
        """Make the (healthy) canary the primary with all traffic (`owner`: only if that run deployed it)."""

    def rollback(self, model: ModelRef, owner: str = "") -> Version | None:
        """Remove the canary; the primary keeps all traffic (None when no version is left)."""

    def analysis_sides(self, name: str, namespace: str) -> AnalysisSides:
        """How an analysis reaches the model's canary and its primary."""

    def start_baseline(self, name: str, namespace: str) -> AnalysisSides:
        """Start a fresh copy of the primary beside the canary, reached by its track only."""

    def stop_baseline(self, name: str, namespace: str) -> None:
        """Remove the analysis baseline, if any."""
