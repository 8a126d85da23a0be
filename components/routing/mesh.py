"""The cluster routers' protocol: how a deployment's traffic reaches its versions.

Each router renders the routing objects for a deployment spec given its runtime (which names the versions'
Services and ports): istio and asm (components/routing/istio.py), kserve-canary, none; the registry is
components/routing/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from components.routing.spec import ClientEndpoint

INGRESS = "istio-ingressgateway.istio-system.svc.cluster.local"


@dataclass(frozen=True)
class IngressOptions:
    """router_options of the routers that write no mesh objects (none, kserve-canary)."""

    ingress: str = INGRESS  # the ingress gateway's host, for clients of a Serverless InferenceService


def check_ingress_options(spec) -> None:
    """Refuse a router option the routers without mesh objects do not have."""
    ingress_of(spec)


def ingress_of(spec) -> str:
    """The ingress gateway's host the routers without mesh objects send clients to."""
    from components.deployment.options import parse_options

    return parse_options("router_options", IngressOptions, spec.router_options).ingress


class MeshRoutes(Protocol):
    """Renders the objects that route a deployment's traffic on a cluster, and reads them back."""

    kind: str
    side_by_side: bool  # splits traffic between versions' own Services, so a candidate can run beside the primary
    splits_traffic: bool  # gives a canary a share of the traffic (by Services, or by revisions)
    in_place: bool  # the canary goes into the primary's own object, which splits between its revisions

    def check(self, spec, runtime) -> None:
        """Refuse what this router cannot do with the spec and runtime."""

    def objects(self, spec, runtime) -> list[dict]:
        """The routing objects (an object named like a runtime's is merged into it)."""

    def owned(self, spec, runtime) -> tuple[tuple[str, str], ...]:
        """(apiVersion, kind) of the objects this router writes for the model alone (none when they are the
        namespace's)."""

    def split(self, objects: list[dict], spec, runtime, versions: list[str]) -> dict[str, int] | None:
        """Each of `versions`' weight as the live `objects` route it (None: this router holds no split)."""

    def client(self, spec, runtime, track: str, live_object: dict) -> ClientEndpoint:
        """How a client reaches the model (with a track: that one version); `live_object` is the version's
        workload as the API server holds it."""


class DirectRoutes:
    """What the routers that write no mesh objects share: clients reach the version as its runtime says."""

    side_by_side = False
    splits_traffic = False
    in_place = False

    def owned(self, spec, runtime) -> tuple[tuple[str, str], ...]:
        """No objects of the model's own."""
        return ()

    def split(self, objects: list[dict], spec, runtime, versions: list[str]) -> dict[str, int] | None:
        """No split is held by a router."""
        return None

    def client(self, spec, runtime: Any, track: str, live_object: dict) -> ClientEndpoint:
        """The runtime's own client (its Service, or its URL through the ingress)."""
        return runtime.client(spec, live_object, ingress_of(spec))
