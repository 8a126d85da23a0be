"""Compile every step's KFP component, the KFP pipelines and the Argo WorkflowTemplates to YAML.

The outputs are committed (golden files): `meshserve compile` rewrites them, and the tests check
that the committed files match what the code builds today.
"""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPILED_DIR = REPO_ROOT / "pipelines" / "compiled"


def _kfp_yaml(obj) -> str:
    """KFP's own compiler output for a component or pipeline, as text."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "out.yaml"
        compiler.Compiler().compile(obj, str(path))
        return "".join(_stable_default(line) for line in path.read_text().splitlines(keepends=True))


def _stable_default(line: str) -> str:
    """KFP's header comment prints dict defaults in an order that varies between runs; sort them."""
    head, marker, default = line.partition("[Default: {")
    if not (line.startswith("#") and marker):
        return line
    value = ast.literal_eval("{" + default.rstrip().removesuffix("]"))
    return f"{head}[Default: {_sorted(value)!r}]\n"


def _sorted(value):
    return {k: _sorted(value[k]) for k in sorted(value)} if isinstance(value, dict) else value


def _train_component() -> str:
    from components.steps.train.kfp_component import train

    return _kfp_yaml(train)


def _upload_component() -> str:
    from components.steps.upload.kfp_component import upload

    return _kfp_yaml(upload)


def _benchmark_component() -> str:
    from components.steps.benchmark.kfp_component import benchmark

    return _kfp_yaml(benchmark)


def _benchmark_argo() -> str:
    from pipelines.hera_workflows import benchmark_template

    return yaml.safe_dump(benchmark_template().to_dict(), sort_keys=False)


def _gate_component() -> str:
    from components.steps.gate.kfp_component import gate

    return _kfp_yaml(gate)


def _gate_argo() -> str:
    from pipelines.hera_workflows import gate_template

    return yaml.safe_dump(gate_template().to_dict(), sort_keys=False)


def _deploy_component() -> str:
    from components.steps.deploy.kfp_component import deploy

    return _kfp_yaml(deploy)


def _rollout_components() -> str:
    from components.steps.rollout import kfp_component as rollout

    return "".join(_kfp_yaml(c) for c in (rollout.promote, rollout.rollback, rollout.finish_rollout))


def _train_to_serve_pipeline() -> str:
    from pipelines.kfp_pipelines import train_to_serve_pipeline

    return _kfp_yaml(train_to_serve_pipeline)


def _train_upload_pipeline() -> str:
    from pipelines.kfp_pipelines import train_upload_pipeline

    return _kfp_yaml(train_upload_pipeline)


def _train_upload_argo() -> str:
    from pipelines.hera_workflows import train_upload_template

    return yaml.safe_dump(train_upload_template().to_dict(), sort_keys=False)


GOLDEN_FILES: dict[Path, Callable[[], str]] = {
    REPO_ROOT / "components/steps/train/component.yaml": _train_component,
    REPO_ROOT / "components/steps/upload/component.yaml": _upload_component,
    REPO_ROOT / "components/steps/benchmark/component.yaml": _benchmark_component,
    COMPILED_DIR / "train_upload.kfp.yaml": _train_upload_pipeline,
    COMPILED_DIR / "benchmark.argo.yaml": _benchmark_argo,
    REPO_ROOT / "components/steps/gate/component.yaml": _gate_component,
    COMPILED_DIR / "gate.argo.yaml": _gate_argo,
    REPO_ROOT / "components/steps/deploy/component.yaml": _deploy_component,
    REPO_ROOT / "components/steps/rollout/components.yaml": _rollout_components,
    COMPILED_DIR / "train_to_serve.kfp.yaml": _train_to_serve_pipeline,
    COMPILED_DIR / "train_upload.argo.yaml": _train_upload_argo,
}


def render_all() -> dict[Path, str]:
    """Every generated file's path and the text the code builds for it now."""
    return {path: build() for path, build in GOLDEN_FILES.items()}


def write_all() -> list[Path]:
    """Rewrite every generated file; return the paths written."""
    written = []
    for path, text in render_all().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
