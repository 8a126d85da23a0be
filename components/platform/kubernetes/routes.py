"""The rollout's router on a cluster: the model's routing objects (Gateway, DestinationRules, VirtualService, as
its cluster router renders them) are applied for the route in force; routing objects of versions no longer routed
are deleted. A snapshot holds the objects' specs as they were, so a rollback puts them back exactly."""

from __future__ import annotations

from dataclasses import replace

from components.deployment.spec import DeploymentSpec
from components.kube.client import Kube
from components.platform.kubernetes.names import VERSION_LABEL, model_selector
from components.platform.kubernetes.render import routing_objects
from components.platform.kubernetes.versions import applied_form
from components.routing.registry import mesh_routes_for
from components.routing.spec import Route
from components.runtimes.base import runtime_for


class ClusterRoutes:
    """One model's routing objects, as its router renders them for the route in force."""

    def __init__(self, kube: Kube, spec: DeploymentSpec):
        self.kube = kube
        self.spec = spec
        self.router = mesh_routes_for(spec.router)
        self.runtime = runtime_for(spec.runtime)

    def reconcile(self, route: Route) -> None:
        """Apply the model's routing objects for the route; delete those of versions it no longer routes."""
        wanted = routing_objects(self._spec_for(route))
        for obj in wanted:
            self.kube.apply(obj)
        self._delete_unless(wanted)

    def finalize(self, name: str) -> None:
        """Delete the model's routing objects."""
        self._delete_unless([])

    def snapshot(self, name: str) -> dict | None:
        """The model's routing objects' specs as they are now (None when it has none)."""
        objects = [applied_form(obj) for obj in self._current()]
        return {"objects": objects} if objects else None

    def restore(self, name: str, snapshot: dict | None) -> None:
        """Apply the recorded objects as they were; delete the model's routing objects they did not include."""
        recorded = (snapshot or {}).get("objects", [])
        for obj in recorded:
            self.kube.apply(obj)
        self._delete_unless(recorded)

    def live_split(self, versions: list[str]) -> dict[str, int] | None:
        """Each version's weight as the live routing objects give it (None: the router holds no split)."""
        return self.router.split(self._current(), self.spec, self.runtime, versions)

    def _spec_for(self, route: Route) -> DeploymentSpec:
        """The spec whose routing objects put `route` in force (the router renders from a spec, as `meshserve
        render` does)."""
        routed = route.canary or route.primary
        if routed is None:
            raise ValueError(f"the route of {route.name} reaches no version")
        both = route.primary is not None and route.canary is not None
        return replace(self.spec, version=_named(routed.version),
                       primary_version=_named(route.primary.version) if both and route.primary else "",
                       baseline_version=_named(route.baseline.version) if both and route.baseline else "",
                       canary_percent=route.canary_weight if both else 0)

    def _current(self) -> list[dict]:
        """The model's own routing objects as the API server holds them (a version's own objects aside, unless the
        router splits inside them, as KServe's canary does)."""
        selector = model_selector(self.spec.name)
        return [obj for api_version, kind in self.router.owned(self.spec, self.runtime)
                for obj in self.kube.list(api_version, kind, self.spec.namespace, selector)
                if self.router.in_place or VERSION_LABEL not in (obj["metadata"].get("labels") or {})]

    def _delete_unless(self, keep: list[dict]) -> None:
        kept = {(obj["kind"], obj["metadata"]["name"]) for obj in keep}
        for obj in self._current():
            if (obj["kind"], obj["metadata"]["name"]) not in kept:
                self.kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], self.spec.namespace)


def _named(version: str) -> str:
    """An endpoint's version name ('-' stands for none)."""
    return "" if version == "-" else version
