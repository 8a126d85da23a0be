"""No router: clients reach the version's own Service (or KServe's URL); nothing splits traffic.

A runtime with a stable Service of the model's own (the `deployment` runtime) moves traffic blue/green, as
Flagger's Kubernetes provider does: this router points that Service's selector at the primary, and promote
points it at the new version, all at once.
"""

from __future__ import annotations

from typing import Any

from components.errors import InvalidInputError
from components.routing.mesh import DirectRoutes, check_ingress_options
from components.routing.spec import ClientEndpoint


class NoRoutes(DirectRoutes):
    """Renders nothing but a blue/green runtime's stable Service; a canary weight has nowhere to go."""

    kind = "none"

    def check(self, spec, runtime) -> None:
        """Refuse a canary weight: with no router, nothing splits traffic."""
        check_ingress_options(spec)
        if spec.canary_percent:
            fix = ("pass 0: the candidate is measured at its own Service and takes all traffic at promote "
                   "(blue/green by the stable Service), or route with istio or asm") if _blue_green(runtime) else (
                "pass 0, or route with istio, asm or kserve-canary")
            raise InvalidInputError("canary_percent", "no router splits traffic", fix)

    def objects(self, spec, runtime) -> list[dict]:
        """The stable Service on the primary (the only version, on a first deploy), for a blue/green runtime."""
        if not _blue_green(runtime) or not spec.version:
            return []
        return [runtime.stable_service(spec, spec.primary_version or spec.version)]

    def owned(self, spec, runtime) -> tuple[tuple[str, str], ...]:
        """The stable Service, for a blue/green runtime."""
        return (("v1", "Service"),) if _blue_green(runtime) else ()

    def split(self, objects: list[dict], spec, runtime, versions: list[str]) -> dict[str, int] | None:
        """All of it to the version the stable Service selects (None: no stable Service holds a split)."""
        stable = next((obj for obj in objects if obj["kind"] == "Service" and obj["metadata"]["name"] == spec.name),
                      None)
        if stable is None:
            return None
        selected = stable["spec"].get("selector", {}).get("meshserve.io/version", "")
        return {version: 100 if version == selected else 0 for version in versions}

    def client(self, spec, runtime: Any, track: str, live_object: dict) -> ClientEndpoint:
        """The stable Service for the model (a version's own Service for a track); else the runtime's client."""
        if _blue_green(runtime) and not track:
            port = runtime.workload(spec).rest_port
            return ClientEndpoint(f"http://{spec.name}.{spec.namespace}.svc.cluster.local:{port}", {})
        return super().client(spec, runtime, track, live_object)


def _blue_green(runtime) -> bool:
    """Whether the runtime has a stable Service of the model's own to switch."""
    return hasattr(runtime, "stable_service")
