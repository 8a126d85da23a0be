"""The routing spec: for each model, its primary and canary endpoints and how traffic splits.

It says what an experienced Istio user would write in a VirtualService and DestinationRule, in mesh-
neutral terms: weighted primary/canary split, routing by the `model` header (and by the model name
in the KServe path), least-connections balancing, retries on connection failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from components.errors import InvalidInputError
from components.inputs import DNS_LABEL

TRACK_HEADER = "x-meshserve-track"  # pins a request to the primary, the canary or the analysis baseline
LOAD_BALANCERS = ("LEAST_CONN", "LEAST_REQUEST", "ROUND_ROBIN")


@dataclass(frozen=True)
class Endpoint:
    """One serving version of a model: where its REST and gRPC listeners are.

    On a cluster that is one Service address; locally each of a version's processes (replicas) has its
    own, the first in `http`/`grpc` and the others, as (http, grpc) pairs, in `more_replicas`.
    """

    version: str
    http: str
    grpc: str
    more_replicas: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "more_replicas", tuple(tuple(pair) for pair in self.more_replicas))

    def addresses(self, protocol: str) -> tuple[str, ...]:
        """Every replica's address for `protocol` (http or grpc)."""
        index = ("http", "grpc").index(protocol)
        return (getattr(self, protocol),) + tuple(pair[index] for pair in self.more_replicas)


@dataclass(frozen=True)
class ClientEndpoint:
    """How a client (the benchmark step) reaches a model: the URL and the headers it must send."""

    url: str
    headers: dict[str, str]

    def header_lines(self) -> list[str]:
        """The headers as `Name: value` lines (bench's -H form)."""
        return [f"{key}: {value}" for key, value in self.headers.items()]


def model_headers(name: str, track: str = "") -> dict[str, str]:
    """The headers that reach a model through a router (with a track: that one version of it)."""
    return {"model": name} | ({TRACK_HEADER: track} if track else {})


@dataclass(frozen=True)
class Route:
    """A model's traffic: all of it to `primary`, except `canary_weight` percent to `canary`.

    A `baseline` (a fresh copy of the primary, started for an analysis) takes no weight: only requests
    pinned to it by the track header reach it.
    """

    name: str
    primary: Endpoint | None
    canary: Endpoint | None = None
    canary_weight: int = 0
    baseline: Endpoint | None = None

    def weights(self) -> tuple[int, int]:
        """(primary %, canary %)."""
        if self.canary is None:
            return 100, 0
        if self.primary is None:
            return 0, 100
        return 100 - self.canary_weight, self.canary_weight

    def tracks(self) -> list[tuple[str, Endpoint]]:
        """The versions a request can be pinned to: ("primary", endpoint) and/or ("canary", endpoint)."""
        return [(track, endpoint) for track, endpoint in (("primary", self.primary), ("canary", self.canary))
                if endpoint is not None]

    def pinned_tracks(self) -> list[tuple[str, Endpoint]]:
        """Every version a request can be pinned to by the track header: the weighted ones and the baseline."""
        return self.tracks() + ([("baseline", self.baseline)] if self.baseline is not None else [])

    def validated(self) -> Route:
        """This route, if its name and weights are valid."""
        if len(self.name) > 63:
            raise InvalidInputError("name", f"{len(self.name)} characters is too long for a model name",
                                    "use at most 63 (DNS-1123)")
        if not DNS_LABEL.fullmatch(self.name):
            raise InvalidInputError("name", f"{self.name!r} is not a valid model name",
                                    "use lower-case letters, digits and '-' (DNS-1123)")
        if not 0 <= self.canary_weight <= 100:
            raise InvalidInputError("canary_percent", f"{self.canary_weight} is out of range", "pass 0 to 100")
        if self.primary is None and self.canary is None:
            raise InvalidInputError("name", f"route {self.name} has no endpoint", "deploy a version first")
        return self


@dataclass(frozen=True)
class RoutingSpec:
    """Every route behind one gateway, plus gateway-wide traffic policy."""

    routes: tuple[Route, ...] = ()
    header: str = "model"
    load_balancer: str = "LEAST_CONN"
    connect_retries: int = 2
    max_pending_requests: int = 0  # per version's host; 0: the mesh's default
    eject_after_5xx: int = 0  # consecutive 5xx before a pod is ejected; 0: no outlier detection

    def route(self, name: str) -> Route | None:
        """The route for a model, if any."""
        return next((route for route in self.routes if route.name == name), None)

    def with_route(self, route: Route) -> RoutingSpec:
        """A copy with `route` added or replaced."""
        others = tuple(r for r in self.routes if r.name != route.name)
        return replace(self, routes=tuple(sorted(others + (route.validated(),), key=lambda r: r.name)))

    def without_route(self, name: str) -> RoutingSpec:
        """A copy without the model's route."""
        return replace(self, routes=tuple(r for r in self.routes if r.name != name))

    def validated(self) -> RoutingSpec:
        """This spec, if its policy is known."""
        if self.load_balancer not in LOAD_BALANCERS:
            raise InvalidInputError("load_balancer", f"unknown balancer {self.load_balancer!r}",
                                    f"use one of {', '.join(LOAD_BALANCERS)}")
        for route in self.routes:
            route.validated()
        return self
