"""Cluster router names to implementations; an unknown name is an error, never a fallback."""

from __future__ import annotations

from components.errors import InvalidInputError
from components.routing.istio import IstioRoutes
from components.routing.kserve_canary import KServeCanaryRoutes
from components.routing.mesh import MeshRoutes
from components.routing.nop import NoRoutes


def mesh_routes_for(kind: str) -> MeshRoutes:
    """The cluster router registered under `kind`; an unknown kind is an error, never a fallback."""
    if kind in ("istio", "asm"):
        return IstioRoutes(kind)
    if kind == "kserve-canary":
        return KServeCanaryRoutes()
    if kind == "none":
        return NoRoutes()
    raise InvalidInputError("router", f"unknown router {kind!r}", "use one of none, istio, asm, kserve-canary")
