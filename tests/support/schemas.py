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
    """A copy of `schema` in which every object with declared properties rejects unknown ones."""
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
