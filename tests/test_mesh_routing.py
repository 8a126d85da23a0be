"""One routing spec, two meshes: the local nginx and the Istio/ASM objects must route alike.

- The objects validate strictly against the upstream Istio CRDs in ../shared/schemas (ASM's dynamic
  subset fields against upstream plus meshserve's extension schema).
- A real nginx, configured from a spec, answers a table of requests; Istio's matching rules, applied to
  the VirtualService rendered from the same spec, must pick the same version for every one of them.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
import yaml

from components.contracts import load_schema
from components.errors import InvalidInputError
from components.routing.istio import MeshTarget, render_mesh
from components.routing.spec import Endpoint, Route, RoutingSpec
from pipelines.cli import main
from tests.conftest import shared_path
from tests.support.istio_routing import destinations
from tests.support.schemas import crd_errors
from tests.support.servers import free_port, serve_bytes

ISTIO_CRDS = ("schemas", "istio", "customresourcedefinitions.gen.yaml")
MODELMESH = MeshTarget(flavor="asm", namespace="modelmesh-serving", gateway="grpc-gateway",
                       service_host="modelmesh-serving.{namespace}.svc.cluster.local",
                       dynamic_subset_key="modelmesh.asm.alibabacloud.com")


def example_spec(canary_weight: int = 10) -> RoutingSpec:
    local = ("127.0.0.1:1", "127.0.0.1:2")
    return RoutingSpec((Route("digits", Endpoint("va", *local), Endpoint("vb", *local), canary_weight),
                        Route("sklearn-iris", Endpoint("vc", *local))))


@pytest.mark.parametrize("target", [MeshTarget(namespace="kserve-test"), MeshTarget(flavor="asm")],
                         ids=["istio", "asm"])
def test_objects_validate_strictly_against_the_istio_crds(target):
    crds = shared_path(*ISTIO_CRDS)
    objects = render_mesh(example_spec(), target)
    assert [o["kind"] for o in objects] == ["Gateway", "VirtualService", "DestinationRule", "DestinationRule",
                                            "DestinationRule"]
    for obj in objects:
        assert crd_errors(crds, obj) == [], obj["kind"]


def test_asm_dynamic_subsets_validate_only_with_the_extension_schema():
    crds = shared_path(*ISTIO_CRDS)
    extension = load_schema("asm_extensions")
    objects = render_mesh(RoutingSpec((Route("tf-mnist", Endpoint("v1", "-", "-")),)), MODELMESH)
    rule, service = objects[2], objects[1]
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["dynamicSubset"] == {
        "subsetSelectors": [{"keys": ["modelmesh.asm.alibabacloud.com"], "fallbackPolicy": "ANY_ENDPOINT"}]}
    assert service["spec"]["http"][0]["headerToDynamicSubsetKey"] == [
        {"header": "model", "key": "modelmesh.asm.alibabacloud.com"}]
    assert all(crd_errors(crds, obj, extension) == [] for obj in objects)
    assert any("'dynamicSubset' was unexpected" in e for e in crd_errors(crds, rule))  # upstream alone refuses it
    service["spec"]["http"][0]["headerToDynamicSubsetKey"][0]["hedaer"] = "model"
    assert any("'hedaer' was unexpected" in e for e in crd_errors(crds, service, extension))


def test_a_misspelt_field_or_a_broken_cel_rule_fails_validation():
    crds = shared_path(*ISTIO_CRDS)
    rule = render_mesh(example_spec(), MeshTarget())[2]
    rule["spec"]["trafficPolicy"]["loadBalancer"]["simpel"] = "LEAST_CONN"
    assert crd_errors(crds, rule) == ["spec/trafficPolicy/loadBalancer: Additional properties are not allowed "
                                      "('simpel' was unexpected)"]
    del rule["spec"]["trafficPolicy"]["loadBalancer"]["simpel"]
    rule["spec"]["trafficPolicy"]["outlierDetection"] = {"interval": "10s"}
    assert crd_errors(crds, rule) == []  # the CEL rule is evaluated, and holds
    rule["spec"]["trafficPolicy"]["outlierDetection"] = {"interval": "0s"}
    assert crd_errors(crds, rule) == ["/spec/trafficPolicy/outlierDetection/interval: breaks CEL rule "
                                      "duration(self) >= duration('1ms')"]
    rule["spec"]["trafficPolicy"]["outlierDetection"] = {"interval": "ten seconds"}
    assert "CEL rule not evaluated here" in crd_errors(crds, rule)[0]  # cannot evaluate: fails closed


def test_weights_balancer_and_retries_come_from_the_spec():
    spec = RoutingSpec(example_spec(25).routes, load_balancer="LEAST_REQUEST", connect_retries=3)
    _, service, *rules = render_mesh(spec, MeshTarget())
    split = next(r for r in service["spec"]["http"] if r["name"] == "digits.rest")
    assert [(d["destination"]["host"].split(".")[0], d["weight"]) for d in split["route"]] == [
        ("digits-va-predictor", 75), ("digits-vb-predictor", 25)]
    assert split["retries"] == {"attempts": 3, "retryOn": "connect-failure,refused-stream,reset"}
    assert {r["spec"]["trafficPolicy"]["loadBalancer"]["simple"] for r in rules} == {"LEAST_REQUEST"}
    grpc = next(r for r in service["spec"]["http"] if r["name"] == "digits.grpc")
    assert {m["port"] for m in grpc["match"]} == {8081} and grpc["route"][0]["destination"]["port"] == {"number": 8081}


@pytest.mark.parametrize(("target", "message"), [
    (MeshTarget(flavor="linkerd"), "^flavor: unknown mesh 'linkerd'; use one of istio, asm$"),
    (MeshTarget(dynamic_subset_key="k"), "^dynamic_subset_key: dynamic subsets are an Alibaba ASM extension"),
    (MeshTarget(service_host="models.{namespace}.svc"), "^service_host: digits's primary and canary map to the same"),
    (MeshTarget(namespace="Kserve_Test"), "^namespace: 'Kserve_Test' is not a DNS-1123 label"),
    (MeshTarget(grpc_port=80), "^grpc_port: REST and gRPC share a gateway port"),
    (MeshTarget(service_host="{model}.svc"), "^service_host: '{model}.svc' is not a usable template; use only"),
])
def test_a_bad_target_is_a_one_line_error(target, message):
    with pytest.raises(InvalidInputError, match=message):
        render_mesh(example_spec(), target)


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """A real nginx routing the example spec (canary at 0%) to one echo server per version."""
    if shutil.which("nginx") is None and not shutil.which("/usr/sbin/nginx"):
        pytest.skip("needs nginx: `make test` installs it")
    from components.routing.nginx import NginxRouter

    servers = {label: serve_bytes(lambda label=label: label.encode()) for label in ("va", "vb", "vc")}  # each its name
    endpoint = {label: Endpoint(label, f"127.0.0.1:{s.server_port}", f"127.0.0.1:{free_port()}")  # no gRPC here
                for label, s in servers.items()}
    router = NginxRouter(tmp_path_factory.mktemp("mesh-router"))
    router.reconcile(Route("digits", endpoint["va"], endpoint["vb"], 0))
    router.reconcile(Route("sklearn-iris", endpoint["vc"]))
    yield router
    router.stop()
    for server in servers.values():
        server.shutdown()


def nginx_answer(router, path: str, headers: dict[str, str]) -> str:
    """The version nginx sent the request to, or '404'."""
    request = urllib.request.Request(f"http://127.0.0.1:{router.ports()['http']}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return str(error.code)


def istio_answer(spec: RoutingSpec, path: str, headers: dict[str, str]) -> str:
    """The version the rendered VirtualService sends the request to (the heaviest destination), or '404'."""
    target = MeshTarget()
    service = render_mesh(spec, target)[1]
    chosen = destinations(service, target.rest_port, path, headers)
    if chosen is None:
        return "404"
    versions = {target.host(r.name, e): e.version for r in spec.routes for e in (r.primary, r.canary) if e}
    return versions[max(chosen, key=lambda d: d[1])[0]]


REQUESTS = [  # (path, headers, version both must pick)
    ("/v2/models/digits/infer", {}, "va"),
    ("/v1/models/sklearn-iris:predict", {}, "vc"),
    ("/v2/models/sklearn-iris/infer", {"model": "digits"}, "va"),  # the header wins over the path
    ("/anything", {"model": "sklearn-iris"}, "vc"),
    ("/v2/health/ready", {}, "va"),  # no model named anywhere: the first route
    ("/v2/models/unknown/infer", {}, "va"),
    ("/v2/models/digits/infer", {"model": "unknown"}, "404"),
    ("/x", {"model": "digits", "x-meshserve-track": "canary"}, "vb"),  # pinned, even at 0%
    ("/x", {"model": "digits", "x-meshserve-track": "primary"}, "va"),
    ("/v2/models/digits/infer", {"x-meshserve-track": "canary"}, "vb"),
    ("/x", {"model": "sklearn-iris", "x-meshserve-track": "canary"}, "404"),  # it has no canary
    ("/x", {"model": "digits", "x-meshserve-track": "blue"}, "404"),
    ("/x", {"x-meshserve-track": "canary"}, "vb"),
]


@pytest.mark.parametrize(("path", "headers", "expected"), REQUESTS)
def test_nginx_and_the_virtual_service_route_each_request_alike(routed, path, headers, expected):
    assert nginx_answer(routed, path, headers) == expected
    assert istio_answer(routed.spec(), path, headers) == expected


def test_a_weighted_split_reaches_the_same_versions_in_both(routed):
    route = next(r for r in routed.spec().routes if r.name == "digits")
    routed.reconcile(replace(route, canary_weight=50))
    try:
        seen = {nginx_answer(routed, "/x", {"model": "digits"}) for _ in range(40)}
        target = MeshTarget()
        chosen = destinations(render_mesh(routed.spec(), target)[1], target.rest_port, "/x", {"model": "digits"})
        assert seen == {"va", "vb"}
        assert [weight for _, weight in chosen] == [50, 50]
    finally:
        routed.reconcile(route)


def test_local_mesh_prints_the_routes_in_force(routed, monkeypatch, capsys):
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(routed.dir.parent))
    assert main(["local", "mesh", "--flavor", "asm", "--namespace", "kserve-test", "--grpc-port", "8033",
                 "--service-grpc-port", "8033"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == render_mesh(routed.spec(), MeshTarget(flavor="asm", namespace="kserve-test", grpc_port=8033,
                                                            service_grpc_port=8033))
    assert printed[0]["apiVersion"] == "networking.istio.io/v1beta1"


def test_local_mesh_with_a_bad_target_is_a_one_line_error(routed, monkeypatch, capsys):
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(routed.dir.parent))
    assert main(["local", "mesh", "--flavor", "istio", "--dynamic-subset-key", "k"]) == 2
    assert capsys.readouterr().err == ("meshserve local: error: dynamic_subset_key: dynamic subsets are an Alibaba "
                                       "ASM extension; render with flavor asm, or leave the key empty\n")


@pytest.mark.parametrize("flavor", ["istio", "asm"])
def test_the_committed_example_objects_validate(flavor):
    crds = shared_path(*ISTIO_CRDS)
    from pipelines.compile import REPO_ROOT

    objects = list(yaml.safe_load_all((REPO_ROOT / f"manifests/mesh/{flavor}/mesh.yaml").read_text()))
    extension = load_schema("asm_extensions") if flavor == "asm" else None
    assert len(objects) >= 3
    assert [error for obj in objects for error in crd_errors(crds, obj, extension)] == []


def test_a_canary_only_route_sends_everything_to_the_canary():
    """A first deploy is routed as a canary with no primary: all traffic to it, no primary track."""
    spec = RoutingSpec((Route("digits", None, Endpoint("vnew", "-", "-"), 100),))
    assert istio_answer(spec, "/v2/models/digits/infer", {}) == "vnew"
    assert istio_answer(spec, "/x", {"model": "digits", "x-meshserve-track": "canary"}) == "vnew"
    assert istio_answer(spec, "/x", {"model": "digits", "x-meshserve-track": "primary"}) == "404"
    service = render_mesh(spec, MeshTarget())[1]
    assert all("weight" not in d for rule in service["spec"]["http"] for d in rule["route"])


def test_rule_names_are_unique_even_for_look_alike_model_names():
    look_alikes = RoutingSpec(tuple(Route(name, Endpoint("v1", "-", "-"), Endpoint("v2", "-", "-"), 10)
                                    for name in ("a", "a-rest", "a-default", "a-rest-primary")))
    names = [rule["name"] for rule in render_mesh(look_alikes, MeshTarget())[1]["spec"]["http"]]
    assert len(names) == len(set(names)) == 2 * (5 * 2 + 5)  # per listener: 5 selectors x 2 tracks + 5 splits
