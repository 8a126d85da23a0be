"""What the runtimes, routers and autoscalers share about rendered objects: metadata and the workload."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from components.deployment.spec import DeploymentSpec


@dataclass(frozen=True)
class Workload:
    """What routers and autoscalers need to know about one version's serving objects."""

    name: str
    service: str
    rest_port: int
    grpc_port: int
    scale_target: dict | None = None  # the scaleTargetRef of an HPA; None when the runtime scales itself


@dataclass(frozen=True)
class Readiness:
    """Where a workload object stands, as its controller reports: ready, failed (why), or neither yet."""

    ready: bool
    failed: str = ""
    conditions: str = ""  # the last conditions, for an error message


def conditions_text(conditions: list[dict]) -> str:
    """Conditions as one line: TYPE=STATUS, with reason and message where not True."""
    parts = []
    for condition in conditions or []:
        text = f"{condition.get('type')}={condition.get('status')}"
        if condition.get("status") != "True" and (condition.get("reason") or condition.get("message")):
            text += f" ({condition.get('reason', '')}: {condition.get('message', '')})"
        parts.append(text)
    return "; ".join(parts)


def condition_is(obj: dict, kind: str, status: str = "True") -> bool:
    """Whether the object's status has condition `kind` at `status`."""
    return any(c.get("type") == kind and c.get("status") == status
               for c in obj.get("status", {}).get("conditions", []) or [])


def metadata(spec: DeploymentSpec, name: str, annotations: dict | None = None, namespaced: bool = True,
             versioned: bool = True) -> dict:
    """Object metadata with meshserve's labels (and the spec's namespace unless cluster-scoped).

    An object every version shares (a storage volume) carries the model's labels but not a version's.
    """
    meta: dict = {"name": name}
    if namespaced:
        meta["namespace"] = spec.namespace
    labels = spec.labels()
    meta["labels"] = labels if versioned else {k: v for k, v in labels.items() if k != "meshserve.io/version"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (a model config file) as YAML literal blocks."""


def _represent_text(dumper, text: str):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_text)


def dump_objects(objects: list[dict]) -> str:
    """A YAML stream of the objects, in the order given, keys as rendered."""
    return yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False)


SCALE_TARGET_SOURCE = "meshserve.io/scale-target-source"


def scale_target_annotations(spec: DeploymentSpec) -> dict[str, str]:
    """Where the autoscaler's target came from (a capacity search), as an annotation; none when not said."""
    source = spec.autoscaling.target_source
    return {SCALE_TARGET_SOURCE: source} if source else {}
