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
    import hera.workflows  # noqa: F401 (hera registers a YAML representer for multi-line strings, which KFP's
    from kfp import compiler  # dump then uses: load it first so the output does not depend on import order)

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


def _load(reference: str):
    """The object named by 'package.module:attribute' (imported only when compiling: kfp and hera are heavy)."""
    import importlib

    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


def _kfp(*references: str) -> Callable[[], str]:
    """A builder of KFP YAML for one or more components or pipelines (several are concatenated)."""
    return lambda: "".join(_kfp_yaml(_load(reference)) for reference in references)


def _argo(reference: str) -> Callable[[], str]:
    """A builder of Argo YAML from a function returning a Hera WorkflowTemplate."""
    return lambda: yaml.safe_dump(_load(reference)().to_dict(), sort_keys=False)


_STEPS = "components/steps"
_ROLLOUT = "components.steps.rollout.kfp_component"
GOLDEN_FILES: dict[Path, Callable[[], str]] = {
    REPO_ROOT / _STEPS / "train/component.yaml": _kfp("components.steps.train.kfp_component:train"),
    REPO_ROOT / _STEPS / "upload/component.yaml": _kfp("components.steps.upload.kfp_component:upload"),
    REPO_ROOT / _STEPS / "benchmark/component.yaml": _kfp("components.steps.benchmark.kfp_component:benchmark"),
    REPO_ROOT / _STEPS / "gate/component.yaml": _kfp("components.steps.gate.kfp_component:gate"),
    REPO_ROOT / _STEPS / "deploy/component.yaml": _kfp("components.steps.deploy.kfp_component:deploy"),
    REPO_ROOT / _STEPS / "rollout/components.yaml": _kfp(f"{_ROLLOUT}:promote", f"{_ROLLOUT}:rollback",
                                                         f"{_ROLLOUT}:finish_rollout"),
    COMPILED_DIR / "train_upload.kfp.yaml": _kfp("pipelines.kfp_pipelines:train_upload_pipeline"),
    COMPILED_DIR / "train_to_serve.kfp.yaml": _kfp("pipelines.kfp_pipelines:train_to_serve_pipeline"),
    COMPILED_DIR / "train_upload.argo.yaml": _argo("pipelines.hera_workflows:train_upload_template"),
    COMPILED_DIR / "benchmark.argo.yaml": _argo("pipelines.hera_workflows:benchmark_template"),
    COMPILED_DIR / "gate.argo.yaml": _argo("pipelines.hera_workflows:gate_template"),
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
