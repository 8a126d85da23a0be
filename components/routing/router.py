"""The Router protocol (flagger's pkg/router shape) and the registry of implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from components.errors import InvalidInputError
from components.routing.spec import Route


class Router(Protocol):
    """Puts a model's route in force in one mesh (or the local stand-in)."""

    def reconcile(self, route: Route) -> None:
        """Create or update everything the route needs, with the weights it carries."""

    def set_routes(self, name: str, primary_weight: int, canary_weight: int) -> None:
        """Shift the model's traffic between primary and canary."""

    def get_routes(self, name: str) -> tuple[int, int]:
        """The (primary, canary) weights in force."""

    def finalize(self, name: str) -> None:
        """Remove the model's routes."""

    def snapshot(self, name: str) -> dict | None:
        """The model's routes as they are now (None when it has none), for `restore`."""

    def restore(self, name: str, snapshot: dict | None) -> None:
        """Put back exactly what `snapshot` recorded (no routes, when it is None)."""


def router_for(kind: str, state_dir: Path) -> Router:
    """The router registered under `kind`; an unknown kind is an error, never a fallback."""
    if kind == "nginx":
        from components.routing.nginx import NginxRouter

        return NginxRouter(state_dir)
    raise InvalidInputError("router", f"unknown router {kind!r}", "use one of nginx")
