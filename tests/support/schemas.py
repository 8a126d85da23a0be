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

    A node marked x-kubernetes-preserve-unknown-fields stays open, as the API server keeps it open.
    """
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            open_node = node.get("x-kubernetes-preserve-unknown-fields") is True
            if "properties" in node and "additionalProperties" not in node and not open_node:
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
    for attachment in (extension or {}).get("x-attach", {}).get(kind, []):
        node = schema
        for step in attachment["at"].split("."):
            node = node["properties"][step.removesuffix("[]")]
            node = node["items"] if step.endswith("[]") else node
        node["properties"][attachment["property"]] = extension["$defs"][attachment["definition"]]
    return close_objects(schema)


def crd_errors(crd_file: Path, obj: dict, extension: dict | None = None) -> list[str]:
    """Every strict-schema violation of a custom resource, plus any CEL rule it reaches that is not checked here.

    The CRDs carry x-kubernetes-validations (CEL). This validator does not evaluate CEL, so an object
    that reaches a field with such a rule is reported, never passed silently.
    """
    from jsonschema import Draft7Validator

    schema = crd_schema(crd_file, obj["apiVersion"], obj["kind"], extension)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
              for e in Draft7Validator(schema).iter_errors(obj)]
    return errors + [f"{path}: CEL rule not evaluated here: {rule}" for path, rule in _cel_rules_reached(schema, obj)]


def _cel_rules_reached(schema: dict, value, path: str = "") -> list[tuple[str, str]]:
    reached = [(path or "(root)", rule["rule"]) for rule in schema.get("x-kubernetes-validations", [])]
    if isinstance(value, dict):
        for key, item in value.items():
            child = schema.get("properties", {}).get(key) or (schema.get("additionalProperties") or {})
            if isinstance(child, dict):
                reached += _cel_rules_reached(child, item, f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            reached += _cel_rules_reached(schema["items"], item, f"{path}/{index}")
    return reached
