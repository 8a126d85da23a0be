"""No router: clients reach the version's own Service (or KServe's URL); nothing splits traffic."""

from __future__ import annotations

from components.errors import InvalidInputError
from components.routing.mesh import DirectRoutes, check_ingress_options


class NoRoutes(DirectRoutes):
    """Renders nothing; a canary weight has nowhere to go."""

    kind = "none"

    def check(self, spec, runtime) -> None:
        """Refuse a canary weight: with no router, nothing splits traffic."""
        check_ingress_options(spec)
        if spec.canary_percent:
            raise InvalidInputError("canary_percent", "no router splits traffic",
                                    "pass 0, or route with istio, asm or kserve-canary")

    def objects(self, spec, runtime) -> list[dict]:
        """No objects."""
        return []
