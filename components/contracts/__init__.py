"""Data contracts between steps: JSON Schemas of the artifacts one step writes and another reads.

The promotion gate reads benchmark results through this contract, never through the benchmark's code.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
BENCHMARK_RESULT_SCHEMA = "meshserve.benchmark-result/v1"


@cache
def load_schema(name: str) -> dict:
    """The JSON Schema document stored beside this module as `<name>.schema.json`."""
    return json.loads((_HERE / f"{name}.schema.json").read_text())


def schema_errors(name: str, document: dict) -> list[str]:
    """Every violation of schema `name` by `document` (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(name))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(document)]
