"""Committed YAML (components, pipelines, workflow templates) must match what the code builds.

Regenerate with `make golden` (MESHSERVE_REGEN_GOLDEN=1); CI never regenerates.
"""

import os

import pytest
import yaml

from pipelines.compile import GOLDEN_FILES, REPO_ROOT, render_all
from tests.conftest import shared_path
from tests.support.schemas import argo_errors

REGENERATE = os.environ.get("MESHSERVE_REGEN_GOLDEN") == "1" and not os.environ.get("CI")


@pytest.fixture(scope="module")
def rendered():
    return render_all()


@pytest.mark.parametrize("path", list(GOLDEN_FILES), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_committed_file_matches_the_code(path, rendered):
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered[path])
    assert path.is_file(), f"{path} missing: run `make golden`"
    assert path.read_text() == rendered[path], f"{path} is stale: run `make golden` and review the diff"


@pytest.mark.parametrize("step", ["train", "upload", "benchmark", "gate"])
def test_component_yaml_loads_with_kfp(step):
    from kfp import components

    component = components.load_component_from_file(str(REPO_ROOT / f"components/steps/{step}/component.yaml"))
    assert component.name == step
    spec = yaml.safe_load((REPO_ROOT / f"components/steps/{step}/component.yaml").read_text())
    executor = next(iter(spec["deploymentSpec"]["executors"].values()))["container"]
    assert executor["image"].startswith("ghcr.io/meshserve/steps:")
    assert "pip install" not in " ".join(executor["command"])  # nothing installs at pod start


def test_train_component_has_typed_artifacts():
    spec = yaml.safe_load((REPO_ROOT / "components/steps/train/component.yaml").read_text())
    outputs = spec["components"]["comp-train"]["outputDefinitions"]["artifacts"]
    assert {name: o["artifactType"]["schemaTitle"] for name, o in outputs.items()} == {
        "model": "system.Model", "metrics": "system.Metrics",
        "confusion": "system.ClassificationMetrics", "manifest": "system.Artifact",
    }


@pytest.mark.parametrize("name", ["train_upload", "benchmark", "gate"])
def test_argo_workflow_template_is_valid_against_argo_schema(name):
    schema = shared_path("schemas", "argo", "schema.json")
    template = yaml.safe_load((REPO_ROOT / f"pipelines/compiled/{name}.argo.yaml").read_text())
    assert argo_errors(schema, "WorkflowTemplate", template) == []


def test_strict_validation_rejects_a_misspelt_field():
    schema = shared_path("schemas", "argo", "schema.json")
    template = yaml.safe_load((REPO_ROOT / "pipelines/compiled/train_upload.argo.yaml").read_text())
    template["spec"]["templates"][1]["script"]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in error for error in argo_errors(schema, "WorkflowTemplate", template))
