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
from dataclasses import dataclass, field

from components.errors import InvalidInputError
from components.inputs import DNS_LABEL
from components.routing.spec import TRACK_HEADER, ClientEndpoint, Endpoint, Route, RoutingSpec

MESH_FLAVORS = {"istio": "networking.istio.io/v1", "asm": "networking.istio.io/v1beta1"}
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshserve"}
_RETRY_ON = {"rest": "connect-failure,refused-stream,reset",
             "grpc": "connect-failure,refused-stream,reset,unavailable"}
# In withoutHeaders, Istio turns the regex "*" into Envoy's inverted present_match: "the header is absent".
# (A real regex such as ".*" would be matched against "" for a missing header, and so never hold.)
ABSENT = {"regex": "*"}
_GATEWAY_REF = re.compile(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MATCH_BY = ("model", "port")
ASM_MODEL_SUBSET_KEY = "modelmesh.asm.alibabacloud.com"  # the pod label ModelMesh runtimes carry on ASM (seed 000)


@dataclass(frozen=True)
class MeshTarget:
    """Where the mesh objects go and what the versions' Services are called.

    The defaults fit KServe RawDeployment predictors behind the Istio ingress gateway: REST on the
    gateway's port 80, gRPC on 8081, each version an InferenceService `<model>-<version>`.
    ASM is rendered as networking.istio.io/v1beta1, which ASM 1.21 (seed 000's minimum) serves.
    An empty `service_host` takes each version's host and ports from its endpoint's listeners (the
    cluster renderer's case); a gateway port of 0 turns that listener off; `match_by` "port" routes
    everything arriving on the gateway port (a gateway or host given to one model) instead of
    selecting by the `model` header or path. `gateway` may be NAMESPACE/NAME for a shared gateway.
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
    match_by: str = "model"
    labels: dict = field(default_factory=lambda: dict(MANAGED_BY))

    def validated(self) -> MeshTarget:
        """This target, if every field is usable."""
        if self.flavor not in MESH_FLAVORS:
            raise InvalidInputError("flavor", f"unknown mesh {self.flavor!r}",
                                    f"use one of {', '.join(MESH_FLAVORS)}")
        if not DNS_LABEL.fullmatch(self.namespace):
            raise InvalidInputError("namespace", f"{self.namespace!r} is not a DNS-1123 label",
                                    "use lower-case letters, digits and '-'")
        if not _GATEWAY_REF.fullmatch(self.gateway):
            raise InvalidInputError("gateway", f"{self.gateway!r} is not a gateway name",
                                    "use NAME or NAMESPACE/NAME (lower-case letters, digits and '-')")
        for name in ("rest_port", "grpc_port", "service_rest_port", "service_grpc_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise InvalidInputError(name, f"{getattr(self, name)} is not a port", "pass 1 to 65535 (0: off)")
        try:
            self.service_host.format(name="m", version="v", namespace="n")
        except (KeyError, IndexError, ValueError):
            raise InvalidInputError("service_host", f"{self.service_host!r} is not a usable template",
                                    "use only the placeholders {name}, {version} and {namespace}") from None
        if not self.listeners():
            raise InvalidInputError("rest_port", "both gateway listeners are off", "give REST or gRPC a port")
        if self.rest_port == self.grpc_port:
            raise InvalidInputError("grpc_port", "REST and gRPC share a gateway port", "give gRPC its own port")
        if self.match_by not in MATCH_BY:
            raise InvalidInputError("match_by", f"unknown match {self.match_by!r}", f"use one of {', '.join(MATCH_BY)}")
        if self.dynamic_subset_key and self.flavor != "asm":
            raise InvalidInputError("dynamic_subset_key", "dynamic subsets are an Alibaba ASM extension",
                                    "render with flavor asm, or leave the key empty")
        return self

    def listeners(self) -> list[tuple[str, int]]:
        """The gateway listeners that are on: ("rest", port) and/or ("grpc", port)."""
        return [(listener, port) for listener, port in (("rest", self.rest_port), ("grpc", self.grpc_port)) if port]

    def host(self, name: str, endpoint: Endpoint) -> str:
        """The Service host that serves one version of a model."""
        if not self.service_host:
            return endpoint.http.rpartition(":")[0]
        return self.service_host.format(name=name, version=endpoint.version, namespace=self.namespace)

    def service_port(self, listener: str, endpoint: Endpoint) -> int:
        """The Service port a listener's traffic goes to (the endpoint's own, without a host template)."""
        if not self.service_host:
            return int((endpoint.http if listener == "rest" else endpoint.grpc).rpartition(":")[2])
        return self.service_rest_port if listener == "rest" else self.service_grpc_port


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
    kinds = {"rest": ("http-rest", "HTTP"), "grpc": ("grpc", "GRPC")}
    servers = [{"port": {"number": port, "name": kinds[listener][0], "protocol": kinds[listener][1]},
                "hosts": list(target.hosts)} for listener, port in target.listeners()]
    return _object("Gateway", target.gateway, target,
                   {"selector": {"istio": target.gateway_selector}, "servers": servers})


def virtual_service(spec: RoutingSpec, target: MeshTarget) -> dict:
    """Every model's HTTP routes, in match order: pinned tracks first, then the weighted splits."""
    http = []
    for listener, port in target.listeners():
        # Rule names join parts with "." (model names cannot hold one), so no two rules share a name.
        selectors = [(route, route.name, _model_matches(route, listener, port, spec)) for route in spec.routes]
        no_model = [{"port": port, "withoutHeaders": {spec.header: ABSENT}}]
        selectors.append((spec.routes[0], f"{spec.routes[0].name}.default", no_model))
        http += [_pinned(route, f"{label}.{listener}", track, endpoint, matches, listener, spec, target)
                 for route, label, matches in selectors for track, endpoint in route.pinned_tracks()]
        http += [_weighted(route, f"{label}.{listener}", [_without_track(match) for match in matches], listener,
                           spec, target) for route, label, matches in selectors]
    return _object("VirtualService", f"{target.gateway}-routes", target,
                   {"hosts": list(target.hosts), "gateways": [target.gateway], "http": http})


def model_virtual_service(route: Route, spec: RoutingSpec, target: MeshTarget, name: str) -> dict:
    """One model's own VirtualService (so two models never write the same object), with no default rule.

    While one version serves, its rule takes every request for the model; during a rollout, the track
    header pins a request to one version and the rest split by weight.
    """
    http = []
    for listener, port in target.listeners():
        label = f"{route.name}.{listener}"
        matches = _model_matches(route, listener, port, spec) if target.match_by == "model" else [{"port": port}]
        if len(route.pinned_tracks()) == 1:
            http.append(_weighted(route, label, matches, listener, spec, target))
            continue
        http += [_pinned(route, label, track, endpoint, matches, listener, spec, target)
                 for track, endpoint in route.pinned_tracks()]
        http.append(_weighted(route, label, [_without_track(match) for match in matches], listener, spec, target))
    return _object("VirtualService", name, target, {"hosts": list(target.hosts), "gateways": [target.gateway],
                                                     "http": http})


def destination_rules(spec: RoutingSpec, target: MeshTarget) -> list[dict]:
    """One DestinationRule per version's Service: the spec's balancer (and ASM dynamic subsets)."""
    load_balancer: dict = {"simple": spec.load_balancer}
    if target.dynamic_subset_key:
        load_balancer["dynamicSubset"] = {
            "subsetSelectors": [{"keys": [target.dynamic_subset_key], "fallbackPolicy": "ANY_ENDPOINT"}]}
    policy: dict = {"loadBalancer": load_balancer}
    if spec.max_pending_requests:
        policy["connectionPool"] = {"http": {"http1MaxPendingRequests": spec.max_pending_requests,
                                             "http2MaxRequests": spec.max_pending_requests}}
    if spec.eject_after_5xx:
        policy["outlierDetection"] = {"consecutive5xxErrors": spec.eject_after_5xx, "interval": "10s",
                                      "baseEjectionTime": "30s", "maxEjectionPercent": 50}
    hosts = sorted({target.host(route.name, endpoint) for route in spec.routes
                    for _, endpoint in route.pinned_tracks()})
    return [_object("DestinationRule", host.split(".")[0], target, {"host": host, "trafficPolicy": policy})
            for host in hosts]


def _object(kind: str, name: str, target: MeshTarget, spec: dict) -> dict:
    return {"apiVersion": MESH_FLAVORS[target.flavor], "kind": kind,
            "metadata": {"name": name, "namespace": target.namespace, "labels": dict(target.labels)}, "spec": spec}


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
    port = target.service_port(listener, endpoint)
    return {"destination": {"host": target.host(name, endpoint), "port": {"number": port}}}


def _check_distinct_hosts(route: Route, target: MeshTarget) -> None:
    """A weighted split needs each version behind its own host."""
    if route.primary and route.canary and target.host(route.name, route.primary) == target.host(route.name,
                                                                                                  route.canary):
        raise InvalidInputError("service_host", f"{route.name}'s primary and canary map to the same host",
                                "put {version} in the service host template")


# ----- the cluster router: a deployment's routes as Istio (or ASM) objects -----

@dataclass(frozen=True)
class IstioOptions:
    """router_options for istio and asm."""

    gateway: str = ""  # NAME or NAMESPACE/NAME; default NAME-gateway (ModelMesh: modelmesh-serving-gateway)
    create_gateway: bool = True  # False: the gateway exists (e.g. a shared ingress gateway)
    gateway_selector: str = "ingressgateway"
    hosts: tuple[str, ...] = ("*",)
    virtual_service: str = ""  # default: the model's name (ModelMesh: modelmesh-serving)
    rest_port: int = -1  # gateway ports; -1: 80 and 8081 (ModelMesh: 8008 and 8033); 0: off
    grpc_port: int = -1
    match_by: str = ""  # model (header or path) or port; default model (ModelMesh: port)
    load_balancer: str = "LEAST_CONN"
    retries: int = 2
    max_pending_requests: int = 1024
    eject_after_5xx: int = 5
    host_form: str = "fqdn"  # or short: the Service's bare name, as seeds 000 and 001 write it
    dynamic_subset_key: str = ""  # asm only; ModelMesh on asm: modelmesh.asm.alibabacloud.com
    ingress: str = "istio-ingressgateway.istio-system.svc.cluster.local"  # the gateway's host, for clients


class IstioRoutes:
    """Gateway, one VirtualService per model, one DestinationRule per version's Service.

    On ModelMesh the objects are the namespace's: every model goes through the modelmesh-serving
    Service, which routes by model name itself; on ASM, dynamic subsets send each request to the
    runtime pods that have its model loaded (seed 000).
    """

    side_by_side = True
    splits_traffic = True
    in_place = False

    def __init__(self, flavor: str):
        self.kind = flavor

    def check(self, spec, runtime) -> None:
        """Refuse a split with no primary to split against, and ASM fields on plain Istio."""
        options = self._options(spec)
        if spec.canary_percent and not spec.primary_version:
            raise InvalidInputError("primary_version", "a canary split needs the version serving now",
                                    "pass --primary-version")
        if options.host_form not in ("fqdn", "short"):
            raise InvalidInputError("router_options.host_form", f"unknown {options.host_form!r}", "use fqdn or short")
        self._target(spec, runtime)  # validates the target

    def objects(self, spec, runtime) -> list[dict]:
        """The gateway (unless it exists), the DestinationRules and the model's VirtualService."""
        options = self._options(spec)
        target = self._target(spec, runtime)
        route = self._route(spec, runtime)
        routing = RoutingSpec((route,), load_balancer=options.load_balancer, connect_retries=options.retries,
                              max_pending_requests=options.max_pending_requests,
                              eject_after_5xx=options.eject_after_5xx).validated()
        objects = [gateway(target)] if options.create_gateway and "/" not in target.gateway else []
        return objects + destination_rules(routing, target) + [
            model_virtual_service(route, routing, target, self._virtual_service(spec, runtime))]

    def owned(self, spec, runtime) -> tuple[tuple[str, str], ...]:
        """The Gateway, DestinationRules and VirtualService of the model (none on a shared runtime, whose
        routing objects are the namespace's)."""
        if runtime.shared_routing:
            return ()
        return tuple((MESH_FLAVORS[self.kind], kind) for kind in ("VirtualService", "DestinationRule", "Gateway"))

    def split(self, objects: list[dict], spec, runtime, versions: list[str]) -> dict[str, int] | None:
        """The weights of the model's VirtualService's weighted REST rule, by version (a version it does not
        route is absent; no VirtualService routes nothing)."""
        hosts = {self._endpoint(spec, runtime, version).http.rpartition(":")[0]: version for version in versions}
        name = self._virtual_service(spec, runtime)
        service = next((obj for obj in objects if obj["kind"] == "VirtualService"
                        and obj["metadata"]["name"] == name), None)
        rules = [rule for rule in (service or {}).get("spec", {}).get("http", [])
                 if not any(TRACK_HEADER in match.get("headers", {}) for match in rule.get("match", []))]
        if not rules:
            return {}
        return {hosts.get(destination["destination"]["host"], destination["destination"]["host"]):
                int(destination.get("weight", 100)) for destination in rules[0].get("route", [])}

    def client(self, spec, runtime, track: str, live_object: dict) -> ClientEndpoint:
        """The mesh's ingress gateway on the runtime's REST port, with the headers that reach the model."""
        options = self._options(spec)
        port = options.rest_port if options.rest_port >= 0 else runtime.gateway_ports[0]
        return ClientEndpoint(f"http://{options.ingress}:{port}", runtime.model_headers(spec, track))

    def _virtual_service(self, spec, runtime) -> str:
        """The model's VirtualService (a shared runtime's: named after its Service)."""
        return self._options(spec).virtual_service or (runtime.workload(spec).service if runtime.shared_routing
                                                       else spec.name)

    def _options(self, spec) -> IstioOptions:
        from components.deployment.options import parse_options

        return parse_options("router_options", IstioOptions, spec.router_options)

    def _target(self, spec, runtime) -> MeshTarget:
        options = self._options(spec)
        shared = runtime.shared_routing
        ports = runtime.gateway_ports
        subset_key = options.dynamic_subset_key or (ASM_MODEL_SUBSET_KEY if shared and self.kind == "asm" else "")
        labels = {"app.kubernetes.io/managed-by": "meshserve"}
        if not shared:
            labels["app.kubernetes.io/name"] = spec.name
        return MeshTarget(
            flavor=self.kind, namespace=spec.namespace,
            gateway=options.gateway or f"{runtime.workload(spec).service if shared else spec.name}-gateway",
            gateway_selector=options.gateway_selector, hosts=options.hosts,
            rest_port=ports[0] if options.rest_port < 0 else options.rest_port,
            grpc_port=ports[1] if options.grpc_port < 0 else options.grpc_port, service_host="",
            dynamic_subset_key=subset_key, match_by=options.match_by or ("port" if shared else "model"),
            labels=labels).validated()

    def _route(self, spec, runtime) -> Route:
        if runtime.shared_routing:  # one route for the namespace: the shared Service picks the model by name
            return Route(runtime.workload(spec).service, self._endpoint(spec, runtime, spec.version))
        candidate = self._endpoint(spec, runtime, spec.version)
        if not spec.primary_version:
            return Route(spec.name, candidate).validated()
        primary = self._endpoint(spec, runtime, spec.primary_version)
        baseline = self._endpoint(spec, runtime, spec.baseline_version) if spec.baseline_version else None
        return Route(spec.name, primary, candidate, spec.canary_percent, baseline).validated()

    def _endpoint(self, spec, runtime, version: str) -> Endpoint:
        return runtime.endpoint(spec.for_version(version), short_host=self._options(spec).host_form == "short")
