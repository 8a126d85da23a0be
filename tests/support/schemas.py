"""Strict validation of generated objects against the real upstream schemas in ../shared/schemas.

A real API server silently drops unknown fields; here every object schema that lists its properties
is closed (additionalProperties: false), so a misspelt field fails the test instead.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

_INT_OR_STRING = {"anyOf": [{"type": "string"}, {"type": "integer"}]}


def close_objects(schema):
    """A copy of `schema` in which every object with declared properties rejects unknown ones.

    That includes a node marked x-kubernetes-preserve-unknown-fields that lists its properties (the
    OpenVINO ModelServer's spec): the API server keeps an unknown key there and the operator ignores
    it, so a typo would pass silently. A preserve-unknown node without properties stays open.
    """
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


@cache
def _argo_definitions(schema_path: Path) -> dict:
    definitions = close_objects(json.loads(schema_path.read_text())["definitions"])
    # Argo's schema declares IntOrString as string only; the controller accepts integers too.
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = _INT_OR_STRING
    return definitions


def argo_errors(schema_path: Path, kind: str, obj: dict) -> list[str]:
    """Every strict-schema violation of an Argo object of `kind` (e.g. WorkflowTemplate)."""
    from jsonschema import Draft202012Validator

    schema = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
              "definitions": _argo_definitions(schema_path)}
    validator = Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


_OBJECT_META = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"},
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@cache
def _crds(crd_file: Path) -> dict[str, dict]:
    import yaml

    return {doc["spec"]["names"]["kind"]: doc for doc in yaml.safe_load_all(crd_file.read_text()) if doc}


def crd_schema(crd_file: Path, api_version: str, kind: str, extension: dict | None = None) -> dict:
    """The closed openAPIV3Schema a CRD serves for `apiVersion`, with an extension schema's fields attached."""
    crd = _crds(crd_file)[kind]
    group, _, version = api_version.rpartition("/")
    if group != crd["spec"]["group"]:
        raise KeyError(f"{kind} is in group {crd['spec']['group']}, not {group}")
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    schema = copy.deepcopy(served[version]["schema"]["openAPIV3Schema"])
    schema["properties"] |= {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _OBJECT_META}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    attach_extension(schema, kind, extension)
    return close_objects(schema)


def attach_extension(schema: dict, kind: str, extension: dict | None) -> dict:
    """The openAPIV3Schema of `kind` with an extension schema's fields attached where its x-attach says."""
    for attachment in (extension or {}).get("x-attach", {}).get(kind, []):
        node = schema
        for step in attachment["at"].split("."):
            node = node["properties"][step.removesuffix("[]")]
            node = node["items"] if step.endswith("[]") else node
        node["properties"][attachment["property"]] = copy.deepcopy(extension["$defs"][attachment["definition"]])
    return schema


def crd_errors(crd_file: Path, obj: dict, extension: dict | None = None) -> list[str]:
    """Every strict-schema violation of a custom resource, and every CEL rule it breaks.

    The CRDs carry x-kubernetes-validations (CEL); each rule the object reaches is evaluated with
    cel-python. A rule that cannot be evaluated here is reported as an error, never passed silently.
    """
    from jsonschema import Draft7Validator

    schema = crd_schema(crd_file, obj["apiVersion"], obj["kind"], extension)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
              for e in Draft7Validator(schema).iter_errors(obj)]
    return errors + [f"{path}: {problem}" for path, rule, value in _cel_rules_reached(schema, obj)
                     if (problem := _cel_problem(rule, value))]


def _cel_problem(rule: str, value) -> str:
    """'' when the CEL rule holds for `value`; what went wrong otherwise."""
    import celpy

    try:
        environment = celpy.Environment()
        holds = environment.program(environment.compile(rule)).evaluate({"self": celpy.json_to_cel(value)})
    except Exception as exc:  # an unknown function or a type cel-python cannot evaluate: fail closed
        return f"CEL rule not evaluated here ({type(exc).__name__}): {rule}"
    return "" if holds is True or holds == celpy.celtypes.BoolType(True) else f"breaks CEL rule {rule}"


def _cel_rules_reached(schema: dict, value, path: str = "") -> list[tuple[str, str, object]]:
    reached = [(path or "(root)", rule["rule"], value) for rule in schema.get("x-kubernetes-validations", [])]
    if isinstance(value, dict):
        for key, item in value.items():
            child = schema.get("properties", {}).get(key) or (schema.get("additionalProperties") or {})
            if isinstance(child, dict):
                reached += _cel_rules_reached(child, item, f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            reached += _cel_rules_reached(schema["items"], item, f"{path}/{index}")
    return reached


KUBERNETES_VERSION = "1.30.0"  # core kinds: Kubernetes' own published schemas (kubernetes-validate, strict)
_CRD_FILES = {  # API group -> the pinned upstream CRD file under ../shared/schemas
    "serving.kserve.io": {"InferenceService": "kserve/serving.kserve.io_inferenceservices.yaml",
                          "ServingRuntime": "kserve/serving.kserve.io_servingruntimes.yaml"},
    "intel.com": {"ModelServer": "openvino/intel.com_model_servers.yaml"},
    "networking.istio.io": {kind: "istio/customresourcedefinitions.gen.yaml"
                            for kind in ("Gateway", "VirtualService", "DestinationRule")},
}


def kube_object_errors(shared: Path, obj: dict) -> list[str]:
    """Every strict violation of a rendered object: a custom resource against its pinned CRD (ASM objects,
    served as networking.istio.io/v1beta1, with meshserve's ASM extension), a core kind against
    Kubernetes' strict schema."""
    group = obj["apiVersion"].rpartition("/")[0]
    if group in _CRD_FILES:
        extension = None
        if obj["apiVersion"] == "networking.istio.io/v1beta1":
            from components.contracts import load_schema

            extension = load_schema("asm_extensions")
        return crd_errors(shared / _CRD_FILES[group][obj["kind"]], obj, extension)
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path)) or '(root)'}: {exc.message}"]
    return []
