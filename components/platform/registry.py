"""Platform names to implementations; an unknown name is an error, never a fallback."""

from __future__ import annotations

from dataclasses import dataclass

from components.errors import InvalidInputError
from components.platform.protocol import Platform

PLATFORMS = ("local", "kubernetes")


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster: kubeconfig and context (both empty: the pod's own), and how long to wait."""

    kubeconfig: str = ""
    context: str = ""
    ready_timeout_s: float = 300.0


def platform_for(name: str, cluster: ClusterAccess | None = None) -> Platform:
    """The platform registered under `name`."""
    if name == "local":
        from components.platform.local import LocalPlatform

        return LocalPlatform()
    if name == "kubernetes":
        from components.kube.client import connect
        from components.platform.kubernetes import KubernetesPlatform

        cluster = cluster or ClusterAccess()
        return KubernetesPlatform(connect(cluster.kubeconfig, cluster.context), cluster.ready_timeout_s)
    raise InvalidInputError("platform", f"unknown platform {name!r}", f"use one of {', '.join(PLATFORMS)}")
