"""The mesh objects for a routing spec: an Istio (or Alibaba ASM) Gateway, VirtualService and DestinationRules.

The same `RoutingSpec` that configures the local nginx renders here, rule for rule:
- a request naming a model (the `model` header, or the model in a KServe path /v1|v2/models/NAME)
  goes to that model's versions, split by weight; a request with no `model` header and no model in
  its path goes to the first route, as nginx's default does; an unknown model matches nothing (404);
- the `x-meshserve-track: primary|canary` header pins a request to one version (another value: 404);
- retries on connection failure, `connect_retries` times;
- the spec's load balancer in each destination's DestinationRule (LEAST_CONN, LEAST_REQUEST, ROUND_ROBIN).
Each version is its own Service (KServe RawDeployment names it `<isvc>-predictor`); the
`service_host` template says how a (model, version) pair maps to a host.

The ASM flavor adds ASM's dynamic subsets (seed 000, Model Service Mesh): with `dynamic_subset_key`
set, each DestinationRule groups its endpoints by that pod label (ModelMesh labels each runtime
pod with the models it has loaded) and the VirtualService maps the `model` header to the label, so a
request lands on a runtime that already has its model. These two fields are ASM extensions; the
upstream Istio CRD does not know them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from components.errors import InvalidInputError
from components.routing.spec import TRACK_HEADER, Endpoint, Route, RoutingSpec

MESH_FLAVORS = {"istio": "networking.istio.io/v1", "asm": "networking.istio.io/v1beta1"}
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshserve"}
_RETRY_ON = {"rest": "connect-failure,refused-stream,reset",
             "grpc": "connect-failure,refused-stream,reset,unavailable"}
# In withoutHeaders, Istio turns the regex "*" into Envoy's inverted present_match: "the header is absent".
# (A real regex such as ".*" would be matched against "" for a missing header, and so never hold.)
ABSENT = {"regex": "*"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class MeshTarget:
    """Where the mesh objects go and what the versions' Services are called.

    The defaults fit KServe RawDeployment predictors behind the Istio ingress gateway: REST on the
    gateway's port 80, gRPC on 8081, each version an InferenceService `<model>-<version>`.
    ASM is rendered as networking.istio.io/v1beta1, which ASM 1.21 (seed 000's minimum) serves.
    """

    flavor: str = "istio"
    namespace: str = "default"
    gateway: str = "meshserve-gateway"
    gateway_selector: str = "ingressgateway"
    hosts: tuple[str, ...] = ("*",)
    rest_port: int = 80
    grpc_port: int = 8081
    service_host: str = "{name}-{version}-predictor.{namespace}.svc.cluster.local"
    service_rest_port: int = 80
    service_grpc_port: int = 8081
    dynamic_subset_key: str = ""

    def validated(self) -> MeshTarget:
        """This target, if every field is usable."""
        if self.flavor not in MESH_FLAVORS:
            raise InvalidInputError("flavor", f"unknown mesh {self.flavor!r}",
                                    f"use one of {', '.join(MESH_FLAVORS)}")
        for field, value in (("namespace", self.namespace), ("gateway", self.gateway)):
            if not _DNS_LABEL.match(value):
                raise InvalidInputError(field, f"{value!r} is not a DNS-1123 label",
                                        "use lower-case letters, digits and '-'")
        for field in ("rest_port", "grpc_port", "service_rest_port", "service_grpc_port"):
            if not 0 < getattr(self, field) <= 65535:
                raise InvalidInputError(field, f"{getattr(self, field)} is not a port", "pass 1 to 65535")
        try:
            self.service_host.format(name="m", version="v", namespace="n")
        except (KeyError, IndexError, ValueError):
            raise InvalidInputError("service_host", f"{self.service_host!r} is not a usable template",
                                    "use only the placeholders {name}, {version} and {namespace}") from None
        if self.rest_port == self.grpc_port:
            raise InvalidInputError("grpc_port", "REST and gRPC share a gateway port", "give gRPC its own port")
        if self.dynamic_subset_key and self.flavor != "asm":
            raise InvalidInputError("dynamic_subset_key", "dynamic subsets are an Alibaba ASM extension",
                                    "render with flavor asm, or leave the key empty")
        return self

    def host(self, name: str, endpoint: Endpoint) -> str:
        """The Service host that serves one version of a model."""
        return self.service_host.format(name=name, version=endpoint.version, namespace=self.namespace)


def render_mesh(spec: RoutingSpec, target: MeshTarget) -> list[dict]:
    """Gateway, VirtualService and one DestinationRule per destination host (pure: same input, same objects)."""
    spec, target = spec.validated(), target.validated()
    if not spec.routes:
        raise InvalidInputError("routes", "no model is routed", "deploy a model first")
    for route in spec.routes:
        _check_distinct_hosts(route, target)
    objects = [gateway(target), virtual_service(spec, target), *destination_rules(spec, target)]
    return json.loads(json.dumps(objects))  # no shared sub-dicts, so YAML dumps carry no anchors


def gateway(target: MeshTarget) -> dict:
    """The ingress Gateway: REST over HTTP and gRPC over HTTP/2, each on its own port."""
    listeners = ((target.rest_port, "http-rest", "HTTP"), (target.grpc_port, "grpc", "GRPC"))
    servers = [{"port": {"number": port, "name": name, "protocol": protocol}, "hosts": list(target.hosts)}
               for port, name, protocol in listeners]
    return _object("Gateway", target.gateway, target,
                   {"selector": {"istio": target.gateway_selector}, "servers": servers})


def virtual_service(spec: RoutingSpec, target: MeshTarget) -> dict:
    """Every model's HTTP routes, in match order: pinned tracks first, then the weighted splits."""
    http = []
    for listener, port in (("rest", target.rest_port), ("grpc", target.grpc_port)):
        # Rule names join parts with "." (model names cannot hold one), so no two rules share a name.
        selectors = [(route, route.name, _model_matches(route, listener, port, spec)) for route in spec.routes]
        no_model = [{"port": port, "withoutHeaders": {spec.header: ABSENT}}]
        selectors.append((spec.routes[0], f"{spec.routes[0].name}.default", no_model))
        http += [_pinned(route, f"{label}.{listener}", track, endpoint, matches, listener, spec, target)
                 for route, label, matches in selectors for track, endpoint in route.tracks()]
        http += [_weighted(route, f"{label}.{listener}", [_without_track(match) for match in matches], listener,
                           spec, target) for route, label, matches in selectors]
    return _object("VirtualService", f"{target.gateway}-routes", target,
                   {"hosts": list(target.hosts), "gateways": [target.gateway], "http": http})


def destination_rules(spec: RoutingSpec, target: MeshTarget) -> list[dict]:
    """One DestinationRule per version's Service: the spec's balancer (and ASM dynamic subsets)."""
    load_balancer: dict = {"simple": spec.load_balancer}
    if target.dynamic_subset_key:
        load_balancer["dynamicSubset"] = {
            "subsetSelectors": [{"keys": [target.dynamic_subset_key], "fallbackPolicy": "ANY_ENDPOINT"}]}
    hosts = sorted({target.host(route.name, endpoint) for route in spec.routes for _, endpoint in route.tracks()})
    return [_object("DestinationRule", host.split(".")[0], target,
                    {"host": host, "trafficPolicy": {"loadBalancer": load_balancer}}) for host in hosts]


def _object(kind: str, name: str, target: MeshTarget, spec: dict) -> dict:
    return {"apiVersion": MESH_FLAVORS[target.flavor], "kind": kind,
            "metadata": {"name": name, "namespace": target.namespace, "labels": dict(MANAGED_BY)}, "spec": spec}


def _model_matches(route: Route, listener: str, port: int, spec: RoutingSpec) -> list[dict]:
    """The `model` header, or (REST only) the model's KServe v1/v2 path."""
    matches = [{"port": port, "headers": {spec.header: {"exact": route.name}}}]
    if listener == "rest":  # names are DNS-1123, so the name needs no regex escaping
        matches.append({"port": port, "withoutHeaders": {spec.header: ABSENT},
                        "uri": {"regex": f"^/v[12]/models/{route.name}([:/].*)?$"}})
    return matches


def _without_track(match: dict) -> dict:
    """The match, only for requests with no track header (an unknown track then matches nothing: 404)."""
    return match | {"withoutHeaders": match.get("withoutHeaders", {}) | {TRACK_HEADER: ABSENT}}


def _pinned(route: Route, label: str, track: str, endpoint: Endpoint, matches: list[dict], listener: str,
            spec: RoutingSpec, target: MeshTarget) -> dict:
    """The model's requests that carry `x-meshserve-track: <track>`, all to that one version."""
    pinned = [match | {"headers": match.get("headers", {}) | {TRACK_HEADER: {"exact": track}}} for match in matches]
    return _http_route(f"{label}.{track}", pinned, [_destination(route.name, endpoint, listener, target)],
                       listener, spec, target)


def _weighted(route: Route, label: str, matches: list[dict], listener: str, spec: RoutingSpec,
              target: MeshTarget) -> dict:
    """The model's traffic split between its versions by weight (a 0% version stays listed, at weight 0)."""
    tracks = route.tracks()
    weights = route.weights() if len(tracks) == 2 else (None,)
    destinations = []
    for (_, endpoint), weight in zip(tracks, weights, strict=True):
        destination = _destination(route.name, endpoint, listener, target)
        destinations.append(destination if weight is None else destination | {"weight": weight})
    return _http_route(label, matches, destinations, listener, spec, target)


def _http_route(name: str, match: list[dict], route: list[dict], listener: str, spec: RoutingSpec,
                target: MeshTarget) -> dict:
    rule: dict = {"name": name, "match": match, "route": route}
    if target.dynamic_subset_key:
        rule["headerToDynamicSubsetKey"] = [{"header": spec.header, "key": target.dynamic_subset_key}]
    if spec.connect_retries:
        rule["retries"] = {"attempts": spec.connect_retries, "retryOn": _RETRY_ON[listener]}
    return rule


def _destination(name: str, endpoint: Endpoint, listener: str, target: MeshTarget) -> dict:
    port = target.service_rest_port if listener == "rest" else target.service_grpc_port
    return {"destination": {"host": target.host(name, endpoint), "port": {"number": port}}}


def _check_distinct_hosts(route: Route, target: MeshTarget) -> None:
    """A weighted split needs each version behind its own host."""
    if route.primary and route.canary and target.host(route.name, route.primary) == target.host(route.name,
                                                                                                  route.canary):
        raise InvalidInputError("service_host", f"{route.name}'s primary and canary map to the same host",
                                "put {version} in the service host template")
