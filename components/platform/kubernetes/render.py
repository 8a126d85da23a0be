"""A deployment spec rendered as the objects an operator would write, in the order to apply them.

The runtime renders the version's serving objects (its own scaling fields included), the autoscaler
what scales them from outside (an HPA), the router what sends traffic to them. Before anything is
rendered each of the three checks the combination and refuses, with the reason, what cannot work.
An object two of them render (KServe's canary field on the runtime's InferenceService) is merged,
as server-side apply merges two appliers' fields.
"""

from __future__ import annotations

import copy
import json

from components.autoscaling.base import autoscaler_for
from components.deployment.spec import DeploymentSpec
from components.routing.registry import mesh_routes_for
from components.runtimes.base import runtime_for

APPLY_ORDER = ("ServiceAccount", "PersistentVolume", "PersistentVolumeClaim", "ConfigMap", "ServingRuntime",
               "InferenceService", "ModelServer", "Deployment", "Service", "HorizontalPodAutoscaler", "Gateway",
               "DestinationRule", "VirtualService")


def check_deployment(spec: DeploymentSpec) -> DeploymentSpec:
    """The spec, if its fields are valid and its runtime, router and autoscaler can work together."""
    spec = spec.validated()
    runtime = runtime_for(spec.runtime)
    router = mesh_routes_for(spec.router)
    autoscaler_for(spec.autoscaling.kind)
    runtime.support.check(runtime.kind, spec)
    runtime.check(spec)
    router.check(spec, runtime)
    return spec


def render_deployment(spec: DeploymentSpec) -> list[dict]:
    """Every object the deployment needs, in apply order (pure: the same spec gives the same objects)."""
    spec = check_deployment(spec)
    router_objects = mesh_routes_for(spec.router).objects(spec, runtime_for(spec.runtime))
    return _ordered(version_objects(spec) + router_objects)


def version_objects(spec: DeploymentSpec) -> list[dict]:
    """The objects that serve the spec's version: the runtime's and the autoscaler's, in apply order."""
    spec = check_deployment(spec)
    runtime = runtime_for(spec.runtime)
    objects = runtime.objects(spec) + autoscaler_for(spec.autoscaling.kind).objects(spec, runtime.workload(spec))
    return _ordered(objects)


def routing_objects(spec: DeploymentSpec) -> list[dict]:
    """The objects that route the spec's traffic (with a primary and a canary weight, when it names them); a
    router that splits inside the runtime's own object (KServe's canary) gives that whole object."""
    spec = check_deployment(spec)
    router, runtime = mesh_routes_for(spec.router), runtime_for(spec.runtime)
    if router.in_place:
        owned = set(router.owned(spec, runtime))
        return [obj for obj in render_deployment(spec) if (obj["apiVersion"], obj["kind"]) in owned]
    return _ordered(router.objects(spec, runtime))


def serving_objects(spec: DeploymentSpec) -> list[dict]:
    """What starts a version: its own objects, with the router's share in them when the router splits inside
    the runtime's object (so a KServe canary never takes all traffic before its share is set)."""
    if mesh_routes_for(check_deployment(spec).router).in_place:
        return render_deployment(spec)
    return version_objects(spec)


def _ordered(objects: list[dict]) -> list[dict]:
    ordered = sorted(merge_same_objects(objects), key=lambda obj: APPLY_ORDER.index(obj["kind"]))
    return json.loads(json.dumps(ordered))  # no shared sub-dicts, so YAML dumps carry no anchors


def merge_same_objects(objects: list[dict]) -> list[dict]:
    """One object per (apiVersion, kind, namespace, name), later fields merged into the first one's."""
    merged: dict[tuple, dict] = {}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        merged[key] = _deep_merge(merged[key], obj) if key in merged else copy.deepcopy(obj)
    return list(merged.values())


def _deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base
