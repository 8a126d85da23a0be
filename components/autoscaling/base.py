"""The Autoscaler protocol and the registry of autoscaling kinds."""

from __future__ import annotations

from typing import Protocol

from components.deployment.objects import Workload
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError


class Autoscaler(Protocol):
    """Renders the objects that scale one version (the runtime writes any fields of its own)."""

    kind: str

    def objects(self, spec: DeploymentSpec, workload: Workload) -> list[dict]:
        """Objects beside the runtime's, e.g. an HPA."""


class FixedSize:
    """No autoscaler: the runtime runs min_replicas pods."""

    kind = "none"

    def objects(self, spec: DeploymentSpec, workload: Workload) -> list[dict]:
        """No objects of its own."""
        return []


def autoscaler_for(kind: str) -> Autoscaler:
    """The autoscaler registered under `kind`; an unknown kind is an error."""
    from components.autoscaling.hpa import CpuAutoscaler, QpsAutoscaler
    from components.autoscaling.kpa import KnativeAutoscaler

    registry = {scaler.kind: scaler for scaler in (FixedSize, CpuAutoscaler, QpsAutoscaler, KnativeAutoscaler)}
    if kind not in registry:
        raise InvalidInputError("autoscaling", f"unknown autoscaling {kind!r}", f"use one of {', '.join(registry)}")
    return registry[kind]()
