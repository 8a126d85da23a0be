"""The cluster serving-runtime protocol, what every runtime declares it supports, and the registry.

A runtime turns a deployment spec into the objects that serve one version (an InferenceService, a
ModelServer, a Deployment and Service, ...). It also says which model formats, storage schemes,
routers and autoscalers it can work with: each refusal carries its reason, so a combination that
cannot work is refused with that reason before anything is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from components.deployment.objects import Readiness, Workload
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError
from components.routing.spec import ClientEndpoint, Endpoint, model_headers


@dataclass(frozen=True)
class Support:
    """What a runtime can serve, and why it refuses the rest (name -> reason and fix)."""

    formats: tuple[str, ...]
    schemes: tuple[str, ...]
    scheme_refusals: dict[str, str] = field(default_factory=dict)
    router_refusals: dict[str, str] = field(default_factory=dict)
    autoscaling_refusals: dict[str, str] = field(default_factory=dict)

    def check(self, kind: str, spec: DeploymentSpec) -> None:
        """Refuse the spec's format, storage scheme, router or autoscaler if this runtime cannot take it."""
        if spec.model_format not in self.formats:
            raise InvalidInputError("model_format", f"runtime {kind} does not serve {spec.model_format} models",
                                    f"use one of {', '.join(self.formats)}, or another runtime")
        if spec.scheme not in self.schemes:
            reason = self.scheme_refusals.get(spec.scheme, f"runtime {kind} cannot read {spec.scheme}://")
            raise InvalidInputError("storage_uri", reason, f"use {' or '.join(s + '://' for s in self.schemes)}")
        for name, value, refusals in (("router", spec.router, self.router_refusals),
                                      ("autoscaling", spec.autoscaling.kind, self.autoscaling_refusals)):
            if value in refusals:
                reason, _, fix = refusals[value].partition("; ")
                raise InvalidInputError(name, f"{value} with runtime {kind}: {reason}", fix or "choose another")


MESH_GATEWAY_PORTS = (80, 8081)  # a mesh gateway's REST and gRPC ports for a runtime's own Services


class Runtime(Protocol):
    """Renders the objects that serve one version on a cluster."""

    kind: str
    support: Support
    gateway_ports: tuple[int, int]  # (REST, gRPC) a mesh gateway serves this runtime's versions on
    protocols: tuple[str, ...]  # the inference protocols its server speaks, its own first (a load's default)

    def check(self, spec: DeploymentSpec) -> None:
        """Refuse what this runtime cannot do with the spec (beyond `support`'s tables)."""

    def workload(self, spec: DeploymentSpec) -> Workload:
        """The version's Service, ports and scale target."""

    def objects(self, spec: DeploymentSpec) -> list[dict]:
        """Every object the version needs, the runtime's own scaling fields included."""

    def workload_ref(self, spec: DeploymentSpec) -> tuple[str, str, str]:
        """(apiVersion, kind, name) of the object whose status says the version is ready."""

    def readiness(self, obj: dict) -> Readiness:
        """What that object's status says, as its controller writes it."""

    @property
    def shared_routing(self) -> bool:
        """Whether every model shares the runtime's one Service, which routes by model name (so the routing
        objects are the namespace's, not a model's own)."""

    def model_headers(self, spec: DeploymentSpec, track: str) -> dict[str, str]:
        """The headers that reach the model through a router (with a track: that one version)."""

    def served_model(self, spec: DeploymentSpec, track: str) -> str:
        """The model name a request for that version carries (in its path or its gRPC request)."""

    def endpoint(self, spec: DeploymentSpec, short_host: bool = False) -> Endpoint:
        """Where a router reaches the version (its Service's listeners; `short_host`: the bare Service name)."""

    def client(self, spec: DeploymentSpec, live_object: dict, ingress: str) -> ClientEndpoint:
        """How a client reaches the version with no mesh in front: from its live workload object's status, or
        its Service (`ingress`: the cluster's ingress gateway, for runtimes served through it)."""


class ServiceClients:
    """What most runtimes share: a model's own Services, reached by the `model` and track headers through a
    router, or directly at the Service (or the URL the workload's status reports)."""

    shared_routing = False

    def model_headers(self, spec: DeploymentSpec, track: str) -> dict[str, str]:
        """The `model` header, and the track header that pins one version."""
        return model_headers(spec.name, track)

    def served_model(self, spec: DeploymentSpec, track: str) -> str:
        """Every version serves the model under its own name."""
        return spec.name

    def endpoint(self, spec: DeploymentSpec, short_host: bool = False) -> Endpoint:
        """The version's Service: its REST and gRPC listeners."""
        workload = self.workload(spec)
        host = workload.service if short_host else f"{workload.service}.{spec.namespace}.svc.cluster.local"
        return Endpoint(spec.version or "-", f"{host}:{workload.rest_port}", f"{host}:{workload.grpc_port}")

    def client(self, spec: DeploymentSpec, live_object: dict, ingress: str) -> ClientEndpoint:
        """The URL the workload's status reports, else its Service's cluster address."""
        return ClientEndpoint(status_url(live_object) or service_url(spec, self.workload(spec)), {})

    def workload(self, spec: DeploymentSpec) -> Workload:
        """The version's Service, ports and scale target (each runtime's own)."""
        raise NotImplementedError


def status_url(live_object: dict) -> str:
    """The URL a workload object's status reports ("" when none)."""
    return str((live_object.get("status") or {}).get("url") or "")


def service_url(spec: DeploymentSpec, workload: Workload) -> str:
    """A version's Service, by its cluster DNS name and REST port."""
    return f"http://{workload.service}.{spec.namespace}.svc.cluster.local:{workload.rest_port}"


RUNTIME_MODULES = {
    "kserve": ("components.runtimes.kserve", "KServeServerless"),
    "kserve-raw": ("components.runtimes.kserve", "KServeRawDeployment"),
    "modelmesh": ("components.runtimes.modelmesh", "ModelMeshRuntime"),
    "ovms": ("components.runtimes.ovms", "OpenVinoRuntime"),
    "tfserving": ("components.runtimes.tfserving", "TfServingRuntime"),
    "deployment": ("components.runtimes.deployment", "DeploymentRuntime"),
}


def runtime_for(kind: str) -> Runtime:
    """The cluster runtime registered under `kind`; an unknown kind is an error, never a fallback."""
    import importlib

    if kind not in RUNTIME_MODULES:
        raise InvalidInputError("runtime", f"unknown runtime {kind!r}", f"use one of {', '.join(RUNTIME_MODULES)}")
    module, attribute = RUNTIME_MODULES[kind]
    return getattr(importlib.import_module(module), attribute)()
