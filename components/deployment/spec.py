"""The deployment spec: what to serve, where, how it is routed and how it scales, typed and validated.

One spec drives every runtime (KServe Serverless/RawDeployment, ModelMesh, OpenVINO, TF Serving), every
router (Istio, Alibaba ASM, KServe's own canary, none) and every autoscaler (HPA on CPU or QPS, Knative
KPA). The CLI's flags, a YAML/JSON spec file, the KFP component and the Hera template all build this
one object; `validated()` checks each field on its own, and the renderer checks the combination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from components.errors import InvalidInputError
from components.inputs import DNS_LABEL, clipped
from components.storage.uri import STORAGE_URI

RUNTIMES = ("kserve", "kserve-raw", "modelmesh", "ovms", "tfserving", "deployment")
ROUTERS = ("none", "istio", "asm", "kserve-canary")
AUTOSCALERS = ("none", "hpa-cpu", "hpa-qps", "kpa")
MODEL_FORMATS = ("sklearn", "tensorflow", "onnx", "triton", "xgboost", "lightgbm", "pytorch", "openvino")
STORAGE_SCHEMES = ("pvc", "s3", "oss", "gs", "https")
SIDE_BY_SIDE_ROUTERS = ("istio", "asm")  # each version behind its own Service (the routers' side_by_side)
SIDE_BY_SIDE_RUNTIMES = ("modelmesh", "tfserving", "deployment")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_VERSION = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Resources:
    """CPU, memory and GPUs for each serving pod; requests equal limits (Guaranteed QoS, seed 001)."""

    cpu: str = ""
    memory: str = ""
    gpus: int = 0

    def validated(self) -> Resources:
        """These resources, if every quantity parses."""
        for name in ("cpu", "memory"):
            value = getattr(self, name)
            if value and not _QUANTITY.fullmatch(value):
                raise InvalidInputError(f"resources.{name}", f"{clipped(value)} is not a Kubernetes quantity",
                                        "write e.g. 500m or 2 (cpu), 512Mi or 2Gi (memory)")
        if not isinstance(self.gpus, int) or isinstance(self.gpus, bool) or self.gpus < 0:
            raise InvalidInputError("resources.gpus", f"{clipped(self.gpus)} is not a GPU count", "pass 0 or more")
        return self

    def requirements(self) -> dict:
        """The container `resources` block (empty when nothing is set)."""
        amounts = {key: value for key, value in (("cpu", self.cpu), ("memory", self.memory)) if value}
        if self.gpus:
            amounts["nvidia.com/gpu"] = str(self.gpus)
        return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


@dataclass(frozen=True)
class Toleration:
    """A pod toleration, e.g. for the taint of a preemptible node pool."""

    key: str
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    @classmethod
    def parse(cls, text: str) -> Toleration:
        """KEY[=VALUE][:EFFECT], as kubectl taint writes it; KEY alone (or KEY:EFFECT) tolerates any value."""
        rest, _, effect = text.partition(":")
        key, equals, value = rest.partition("=")
        return cls(key=key, operator="Equal" if equals else "Exists", value=value, effect=effect).validated()

    def validated(self) -> Toleration:
        """This toleration, if its key, operator and effect are valid."""
        if not _LABEL_KEY.fullmatch(self.key or ""):
            raise InvalidInputError("toleration", f"{clipped(self.key)} is not a taint key",
                                    "write KEY[=VALUE][:EFFECT]")
        if self.operator not in TOLERATION_OPERATORS:
            raise InvalidInputError("toleration.operator", f"unknown operator {clipped(self.operator)}",
                                    "use Equal or Exists")
        if self.operator == "Exists" and self.value:
            raise InvalidInputError("toleration.value", "operator Exists takes no value", "drop the value or use Equal")
        if self.effect and self.effect not in TAINT_EFFECTS:
            raise InvalidInputError("toleration.effect", f"unknown effect {clipped(self.effect)}",
                                    f"use one of {', '.join(TAINT_EFFECTS)}")
        return self

    def to_dict(self) -> dict:
        """The pod spec's form."""
        return {key: value for key, value in (("key", self.key), ("operator", self.operator),
                                              ("value", self.value), ("effect", self.effect)) if value}


@dataclass(frozen=True)
class Placement:
    """Where serving pods may run: a node pool's labels and the taints they tolerate (seed 003)."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    def validated(self) -> Placement:
        """This placement, if every label and toleration is valid."""
        for key, value in self.node_selector.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(str(value)):
                raise InvalidInputError("node_selector", f"{key}={value} is not a valid node label",
                                        "write KEY=VALUE with a label key and value")
        for toleration in self.tolerations:
            toleration.validated()
        return self

    def pod_fields(self) -> dict:
        """nodeSelector and tolerations for a pod spec (only those set)."""
        placed: dict = {}
        if self.node_selector:
            placed["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            placed["tolerations"] = [toleration.to_dict() for toleration in self.tolerations]
        return placed


@dataclass(frozen=True)
class Autoscaling:
    """How many replicas, and what scales them.

    kind: none (fixed at min_replicas), hpa-cpu (target = CPU utilization %), hpa-qps (target = requests
    per second per pod, from the External `metric` chosen by `selector`), kpa (Knative: target = the
    `metric`'s value per pod, concurrency or rps; min_replicas 0 scales to zero).
    """

    kind: str = "none"
    min_replicas: int = 1
    max_replicas: int = 1
    target: int = 0
    metric: str = ""
    selector: dict[str, str] = field(default_factory=dict)
    target_source: str = ""  # where the target came from (a capacity search): the scale-target-source annotation

    DEFAULT_TARGETS = {"hpa-cpu": 80, "hpa-qps": 10, "kpa": 10}
    DEFAULT_METRICS = {"hpa-qps": "sls_ingress_qps", "kpa": "concurrency"}

    def resolved(self) -> Autoscaling:
        """Defaults filled in for the kind (target, metric; max = min for a fixed size)."""
        max_replicas = self.min_replicas if self.kind == "none" else self.max_replicas
        return replace(self, target=self.target or self.DEFAULT_TARGETS.get(self.kind, 0),
                       metric=self.metric or self.DEFAULT_METRICS.get(self.kind, ""), max_replicas=max_replicas)

    def validated(self) -> Autoscaling:
        """This autoscaling, if kind, bounds, target and metric agree."""
        if self.kind not in AUTOSCALERS:
            raise InvalidInputError("autoscaling", f"unknown autoscaling {clipped(self.kind)}",
                                    f"use one of {', '.join(AUTOSCALERS)}")
        for name in ("min_replicas", "max_replicas", "target"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise InvalidInputError(name, f"{clipped(getattr(self, name))} is not a count",
                                        "pass a whole number >= 0")
        if self.min_replicas == 0 and self.kind != "kpa":
            raise InvalidInputError("min_replicas", "only Knative's KPA scales to zero",
                                    "pass --min-replicas 1 or more, or use --autoscaling kpa")
        if self.kind != "none" and self.max_replicas < max(self.min_replicas, 1):
            raise InvalidInputError("max_replicas", f"{self.max_replicas} is below min_replicas {self.min_replicas}",
                                    "pass --max-replicas at least --min-replicas")
        if self.kind == "kpa" and self.metric not in ("", "concurrency", "rps"):
            raise InvalidInputError("autoscaling.metric", f"KPA cannot scale on {clipped(self.metric)}",
                                    "use concurrency or rps")
        if self.kind in ("none", "hpa-cpu") and (self.metric or self.selector):
            raise InvalidInputError("autoscaling.metric", f"{self.kind} takes no metric or selector",
                                    "use --autoscaling hpa-qps for an external metric")
        if self.kind == "none" and (self.target or self.target_source):
            raise InvalidInputError("autoscaling.target", "a fixed size has no target", "drop the target")
        if self.target_source and (self.kind == "hpa-cpu" or self.kind == "kpa" and self.metric != "rps"):
            raise InvalidInputError("autoscaling.target", f"a capacity is requests per second, and {self.kind} "
                                    f"scales on {'CPU' if self.kind == 'hpa-cpu' else 'concurrency'}",
                                    "use --autoscaling hpa-qps, or kpa with --scale-metric rps")
        if len(str(self.target_source)) > 500:
            raise InvalidInputError("autoscaling.target_source", "is longer than 500 characters", "shorten it")
        if self.kind == "none" and self.max_replicas not in (1, self.min_replicas):
            raise InvalidInputError("max_replicas", "a fixed size has no maximum",
                                    "pass only --min-replicas, or choose an autoscaler")
        for key, value in self.selector.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(str(value)):
                raise InvalidInputError("autoscaling.selector", f"{key}={value} is not a valid label",
                                        "write KEY=VALUE with a label key and value")
        return self


@dataclass(frozen=True)
class StorageAccess:
    """How serving pods read the model: the Secret with the object-store keys (a reference, never the
    keys), the S3 endpoint settings KServe reads, and the names of the volume objects for OSS via CSI."""

    secret: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_use_https: bool = True
    oss_url: str = ""
    claim: str = ""
    volume: str = ""
    size: str = "5Gi"
    mount_options: str = "-o max_stat_cache_size=0 -o allow_other"

    def validated(self) -> StorageAccess:
        """These settings, if the names are DNS-1123 and the size a quantity."""
        for name in ("secret", "claim", "volume"):
            value = getattr(self, name)
            if value and not DNS_LABEL.fullmatch(value):
                raise InvalidInputError(f"storage.{name}", f"{clipped(value)} is not a valid object name",
                                        "use lower-case letters, digits and '-'")
        if not _QUANTITY.fullmatch(self.size):
            raise InvalidInputError("storage.size", f"{clipped(self.size)} is not a quantity", "write e.g. 5Gi")
        for name in ("s3_endpoint", "oss_url"):
            if "@" in getattr(self, name):
                raise InvalidInputError(f"storage.{name}", "credentials in an endpoint URL",
                                        "put the keys in the storage Secret and name it with --storage-secret")
        return self


@dataclass(frozen=True)
class DeploymentSpec:
    """One model version to serve on a cluster, and how it is routed and scaled."""

    name: str
    storage_uri: str
    model_format: str
    namespace: str = "default"
    version: str = ""
    primary_version: str = ""
    baseline_version: str = ""  # an analysis's copy of the primary, reached by the track header only
    runtime: str = "kserve"
    router: str = "none"
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    canary_percent: int = 0
    resources: Resources = field(default_factory=Resources)
    placement: Placement = field(default_factory=Placement)
    service_account: str = ""
    storage: StorageAccess = field(default_factory=StorageAccess)
    runtime_options: dict = field(default_factory=dict)
    router_options: dict = field(default_factory=dict)

    @property
    def side_by_side(self) -> bool:
        """Whether each version has objects of its own (named NAME-VERSION) rather than replacing the last.

        True when a mesh splits traffic between versions' Services, on ModelMesh, which routes by model
        name (each version is its own model name), and on TF Serving, whose Deployments arena names after
        the version. KServe's canary and no router update one InferenceService in place.
        """
        return bool(self.version) and (self.router in SIDE_BY_SIDE_ROUTERS or self.runtime in SIDE_BY_SIDE_RUNTIMES)

    @property
    def object_name(self) -> str:
        """The name of this version's serving objects."""
        return f"{self.name}-{self.version}" if self.side_by_side else self.name

    def for_version(self, version: str) -> DeploymentSpec:
        """The same deployment for another version (e.g. the primary a canary is split against)."""
        return replace(self, version=version, primary_version="", baseline_version="")

    @property
    def scheme(self) -> str:
        """The storage URI's scheme (pvc, s3, oss, gs, https)."""
        return self.storage_uri.split("://", 1)[0]

    @property
    def bucket_or_claim(self) -> str:
        """The storage URI's root: the claim or the bucket (the host, for https)."""
        return self._storage_parts()["root"]

    @property
    def path(self) -> str:
        """The storage URI's path below its root, without edge slashes."""
        return (self._storage_parts()["path"] or "").strip("/")

    def _storage_parts(self) -> re.Match[str]:
        parts = STORAGE_URI.fullmatch(self.storage_uri)
        if parts is None:  # a validated spec always matches; this is a spec built around validation
            raise InvalidInputError("storage_uri", f"{clipped(self.storage_uri)} is not a storage URI",
                                    "use pvc://, s3://, oss://, gs:// or https://")
        return parts

    def to_mapping(self) -> dict:
        """The spec as plain data, the form `spec_from_mapping` reads back."""
        from dataclasses import asdict

        data = asdict(self)
        data["placement"]["tolerations"] = [dict(t) for t in data["placement"]["tolerations"]]
        return data

    def labels(self) -> dict[str, str]:
        """The labels meshserve puts on every object it renders for this deployment."""
        labels = {"app.kubernetes.io/managed-by": "meshserve", "app.kubernetes.io/name": self.name}
        if self.version:
            labels["meshserve.io/version"] = self.version
        return labels

    def validated(self) -> DeploymentSpec:
        """This spec, if every field is valid on its own (combinations are the renderer's to check)."""
        _check_choice("runtime", self.runtime, RUNTIMES)
        _check_choice("router", self.router, ROUTERS)
        _check_choice("model_format", self.model_format, MODEL_FORMATS)
        _check_name("name", self.name, DNS_LABEL, "lower-case letters, digits and '-', at most 63")
        _check_name("namespace", self.namespace, DNS_LABEL, "lower-case letters, digits and '-', at most 63")
        for name in ("version", "primary_version", "baseline_version"):
            if getattr(self, name):
                _check_name(name, getattr(self, name), _VERSION, "lower-case letters, digits and '-', at most 32")
        if self.primary_version and self.primary_version == self.version:
            raise InvalidInputError("primary_version", "the primary and the new version are the same",
                                    "pass the version serving now")
        if len(self.name) + len(self.version) > 45:
            raise InvalidInputError("name", f"{self.name}-{self.version} is too long for the objects' names",
                                    "keep name and version under 45 characters together")
        if self.service_account:
            _check_name("service_account", self.service_account, DNS_LABEL, "a ServiceAccount name")
        if not isinstance(self.canary_percent, int) or isinstance(self.canary_percent, bool) or \
                not 0 <= self.canary_percent <= 100:
            raise InvalidInputError("canary_percent", f"{clipped(self.canary_percent)} is out of range",
                                    "pass 0 to 100")
        _check_storage_uri(self.storage_uri)
        self.autoscaling.validated()
        self.resources.validated()
        self.placement.validated()
        self.storage.validated()
        return self


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInputError(name, f"unknown {name.replace('_', ' ')} {clipped(value)}",
                                f"use one of {', '.join(choices)}")


def check_namespace(value: str) -> None:
    """A Kubernetes namespace name (DNS-1123 label), or a one-line error."""
    _check_name("namespace", value, DNS_LABEL, "lower-case letters, digits and '-', at most 63")


def _check_name(name: str, value: str, pattern: re.Pattern, rule: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInputError(name, f"{clipped(value)} is not a valid {name.replace('_', ' ')}", f"use {rule}")


def _check_storage_uri(uri: str) -> None:
    match = STORAGE_URI.fullmatch(uri or "")
    if not match or match["scheme"] not in STORAGE_SCHEMES:
        raise InvalidInputError("storage_uri", f"{clipped(uri)} is not a model location",
                                "pass the upload step's storageUri: pvc://, s3://, oss://, gs:// or https://")
    if "@" in match["root"] or "?" in uri:
        raise InvalidInputError("storage_uri", "credentials or a query in the storage URI",
                                "keep keys in the storage Secret; pass the plain location")
    path = (match["path"] or "").strip("/")
    if any(part in (".", "..") for part in path.split("/")):
        raise InvalidInputError("storage_uri", f"path {clipped(path)} has '.' or '..' segments", "pass a plain path")


# ----- reading a spec from a file or a mapping -----

_NESTED = {"autoscaling": Autoscaling, "resources": Resources, "placement": Placement, "storage": StorageAccess}


def spec_from_mapping(data: dict) -> DeploymentSpec:
    """A spec from plain data (a parsed YAML/JSON file); an unknown key is an error naming it."""
    if not isinstance(data, dict):
        raise InvalidInputError("spec", "the spec is not a mapping", "write the spec as YAML/JSON keys and values")
    values = _known_keys(data, DeploymentSpec, "")
    for key, kind in _NESTED.items():
        if key in values:
            values[key] = _nested(key, values[key], kind)
    for key in ("runtime_options", "router_options"):
        if key in values and not isinstance(values[key], dict):
            raise InvalidInputError(key, "is not a mapping", f"write {key} as key: value pairs")
    for key in ("name", "storage_uri", "model_format"):
        if key not in values:
            raise InvalidInputError(key, "is missing from the spec", f"add {key}")
    try:
        return DeploymentSpec(**values).validated()
    except TypeError as exc:  # a value of the wrong shape (e.g. a list where a number goes)
        raise InvalidInputError("spec", str(exc), "check the spec's value types") from None


def load_spec(path: Path) -> DeploymentSpec:
    """A spec from a YAML or JSON file (bounded in size, aliases and duplicate keys refused)."""
    from components.inputs import load_document

    return spec_from_mapping(load_document(Path(path), "spec"))


def _known_keys(data: dict, kind: type, prefix: str) -> dict:
    known = {f.name: f.type for f in fields(kind)}
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        raise InvalidInputError(prefix + unknown[0], "is not a spec field", f"use one of {', '.join(sorted(known))}")
    for key, value in data.items():
        _check_type(prefix + key, value, str(known[key]))
    return dict(data)


_SCALARS = {"int": (int,), "str": (str,), "bool": (bool,), "float": (int, float)}
_CONTAINERS = {"dict": (dict,), "tuple": (list, tuple)}


def _check_type(key: str, value: object, annotation: str) -> None:
    """A value of the field's declared type: a boolean is not a number, a string is not a list, a list is not a
    mapping (YAML makes all of these easy to write by mistake)."""
    base = annotation.split("[", 1)[0].split("|", 1)[0].strip()
    if value is None or (base not in _SCALARS and base not in _CONTAINERS):
        return  # a nested section, checked by its own fields
    expected = _SCALARS.get(base) or _CONTAINERS[base]
    if not isinstance(value, expected) or (isinstance(value, bool) and base != "bool"):
        shape = {"int": "a whole number", "str": "text", "bool": "true or false", "float": "a number",
                 "dict": "a mapping", "tuple": "a list"}[base]
        raise InvalidInputError(key, f"{clipped(value)} is not {shape}", f"write {key} as {shape}")


def _nested(key: str, value, kind: type):
    if not isinstance(value, dict):
        raise InvalidInputError(key, "is not a mapping", f"write {key} as key: value pairs")
    if kind is StorageAccess:  # set from --storage-option KEY=VALUE text too: converted by the fields' types
        from components.deployment.options import parse_options

        return parse_options("storage", StorageAccess, value)
    values = _known_keys(value, kind, f"{key}.")
    if kind is Placement and "tolerations" in values:
        values["tolerations"] = tuple(_toleration(item) for item in values["tolerations"] or ())
    if kind is Placement and "node_selector" in values:
        values["node_selector"] = {str(k): str(v) for k, v in (values["node_selector"] or {}).items()}
    if kind is Autoscaling and "selector" in values:
        values["selector"] = {str(k): str(v) for k, v in (values["selector"] or {}).items()}
    return kind(**values)


def _toleration(item) -> Toleration:
    if isinstance(item, str):
        return Toleration.parse(item)
    if isinstance(item, dict):
        return Toleration(**_known_keys(item, Toleration, "toleration.")).validated()
    raise InvalidInputError("toleration", f"{clipped(item)} is not a toleration",
                            "write KEY[=VALUE][:EFFECT] or a mapping")
