"""The steps run as manifests/rbac's ServiceAccount: what they do is exactly what its Role grants.

The API server's audit log shows every request the ServiceAccount made; the verbs and resources it
used are compared with the rules the manifests grant, both ways. The autoscaling component is not
exercised: this API server (v1.20) does not serve autoscaling/v2.
"""

from __future__ import annotations

import pytest

from components.deployment.spec import spec_from_mapping
from components.errors import PlatformError
from components.kube.client import connect
from components.platform.kubernetes.platform import KubernetesPlatform
from components.platform.protocol import ModelRef
from tests.support.kube_server import FakeController, rbac_objects, steps_kubeconfig

ACCOUNT = "meshserve-steps"


def spec(namespace, name, version, **fields):
    data = {"name": name, "namespace": namespace, "version": version, "model_format": "sklearn",
            "storage_uri": f"pvc://models/{name}/{version}", "runtime": "kserve-raw", "router": "istio"} | fields
    return spec_from_mapping(data)


def run_every_step(cluster: KubernetesPlatform, ns: str) -> None:
    """Deploy, promote, roll back and report on every runtime meshserve renders for a cluster."""
    s3 = {"storage_uri": "s3://models/digits/v1", "storage": {"secret": "s3-keys", "s3_endpoint": "minio:9000"}}
    cluster.deploy_spec(spec(ns, "digits", "v1", **s3))
    cluster.promote(ModelRef("digits", ns))
    cluster.deploy_spec(spec(ns, "digits", "v2", canary_percent=10))
    cluster.rollback(ModelRef("digits", ns))
    cluster.deploy_spec(spec(ns, "iris", "v1"))
    cluster.rollback(ModelRef("iris", ns))  # a first version rolled back: its routes and record go too
    tf = {"runtime": "tfserving", "router": "none", "model_format": "tensorflow"}
    cluster.deploy_spec(spec(ns, "bert", "v1", **tf))
    cluster.promote(ModelRef("bert", ns))
    cluster.deploy_spec(spec(ns, "bert", "v2", **tf))
    cluster.promote(ModelRef("bert", ns))  # removes v1's Deployment, Service and model config
    oss = {"storage_uri": "oss://models/bert-oss/v1", "storage": {"secret": "oss-keys", "oss_url": "oss.example"}}
    cluster.deploy_spec(spec(ns, "bert-oss", "v1", **tf, **oss))
    ovms = {"runtime": "ovms", "model_format": "openvino"}
    cluster.deploy_spec(spec(ns, "resnet", "v1", **ovms))
    cluster.promote(ModelRef("resnet", ns))
    cluster.deploy_spec(spec(ns, "resnet", "v2", canary_percent=50, **ovms))
    cluster.promote(ModelRef("resnet", ns))
    plain = {"runtime": "deployment", "router": "none"}  # blue/green by the stable Service
    cluster.deploy_spec(spec(ns, "wine", "v1", **plain))
    cluster.promote(ModelRef("wine", ns))
    cluster.deploy_spec(spec(ns, "wine", "v2", **plain))
    cluster.promote(ModelRef("wine", ns))  # the stable Service switched, v1's Deployment and Service removed
    with pytest.raises(PlatformError, match="Deployment wine-v3"):
        cluster.deploy_spec(spec(ns, "wine", "v3", **plain))  # never ready: its pods are read for the reason
    cluster.deploy_spec(spec(ns, "mnist", "v1", runtime="modelmesh", router="asm",
                        runtime_options={"serving_runtime": True}))
    cluster.status(ns)


def granted(objects: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for obj in objects if obj["kind"] in ("Role", "ClusterRole")
            for rule in obj["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def used(server, since: int, user: str) -> tuple[set[tuple[str, str, str]], list[str]]:
    """The (group, resource, verb) the user's requests needed, and any refused (404s are reads of absent objects).

    A server-side apply that creates its object (answered 201) is authorized as a patch and as a create.
    """
    events = [e for e in server.audit(since) if e["user"]["username"] == user and e.get("objectRef")]
    refused = [f"{e['verb']} {e['objectRef'].get('resource')}: {e['responseStatus']['code']}" for e in events
               if e["responseStatus"]["code"] >= 400 and e["responseStatus"]["code"] != 404]
    needed = set()
    for event in events:
        key = (event["objectRef"].get("apiGroup", ""), event["objectRef"]["resource"])
        needed.add((*key, event["verb"]))
        if event["verb"] == "patch" and event["responseStatus"]["code"] == 201:
            needed.add((*key, "create"))
    return needed, refused


@pytest.fixture
def steps(kube_server, kube_namespace, tmp_path):
    """The RBAC manifests applied, a controller playing the operators, and the ServiceAccount's kubeconfig."""
    objects = rbac_objects(kube_namespace, components=("oss-volumes",))
    admin = kube_server.admin()
    for obj in objects:
        admin.apply(obj)
    controller = FakeController(kube_server, kube_namespace,
                                lambda obj: "unready" if obj["metadata"]["name"] == "wine-v3" else "ready")
    controller.start()
    yield objects, steps_kubeconfig(kube_server, kube_namespace, ACCOUNT, tmp_path)
    controller.stop()


def test_the_steps_use_exactly_what_the_role_grants(kube_server, kube_namespace, steps):
    objects, kubeconfig = steps
    mark = kube_server.audit_length()
    run_every_step(KubernetesPlatform(connect(str(kubeconfig)), ready_timeout_s=20), kube_namespace)
    requests, refused = used(kube_server, mark, f"system:serviceaccount:{kube_namespace}:{ACCOUNT}")
    assert refused == []
    assert requests == granted(objects), (f"used, not granted: {sorted(requests - granted(objects))}; "
                                          f"granted, never used: {sorted(granted(objects) - requests)}")


def test_a_verb_taken_away_is_a_clear_403(kube_server, kube_namespace, steps):
    objects, kubeconfig = steps
    role = next(obj for obj in objects if obj["kind"] == "Role" and obj["metadata"]["name"] == ACCOUNT)
    rule = next(r for r in role["rules"] if "destinationrules" in r["resources"])
    rule["verbs"] = [verb for verb in rule["verbs"] if verb != "delete"]
    kube_server.admin().apply(role)
    cluster = KubernetesPlatform(connect(str(kubeconfig)), ready_timeout_s=20)
    cluster.deploy_spec(spec(kube_namespace, "digits", "v1"))
    cluster.promote(ModelRef("digits", kube_namespace))
    cluster.deploy_spec(spec(kube_namespace, "digits", "v2", canary_percent=10))
    with pytest.raises(PlatformError) as refused:
        cluster.promote(ModelRef("digits", kube_namespace))  # removes v1's DestinationRule
    assert str(refused.value).startswith(
        f"rbac: forbidden: cannot delete destinationrules.networking.istio.io in namespace {kube_namespace}")
    assert "grant it to the steps' ServiceAccount (manifests/rbac)" in str(refused.value)
