"""The cluster routers' protocol: how a deployment's traffic reaches its versions.

Each router renders the routing objects for a deployment spec given its runtime (which names the versions'
Services and ports): istio and asm (components/routing/istio.py), kserve-canary, none; the registry is
components/routing/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

INGRESS = "istio-ingressgateway.istio-system.svc.cluster.local"


@dataclass(frozen=True)
class IngressOptions:
    """router_options of the routers that write no mesh objects (none, kserve-canary)."""

    ingress: str = INGRESS  # the ingress gateway's host, for clients of a Serverless InferenceService


def check_ingress_options(spec) -> None:
    """Refuse a router option the routers without mesh objects do not have."""
    from components.deployment.options import parse_options

    parse_options("router_options", IngressOptions, spec.router_options)


class MeshRoutes(Protocol):
    """Renders the objects that route a deployment's traffic on a cluster."""

    kind: str

    def check(self, spec, runtime) -> None:
        """Refuse what this router cannot do with the spec and runtime."""

    def objects(self, spec, runtime) -> list[dict]:
        """The routing objects (an object named like a runtime's is merged into it)."""
