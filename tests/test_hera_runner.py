"""The Hera templates executed by Hera's own runner, exactly as the Argo pod's command line runs them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from components.manifest import read_manifest, verify_directory
from pipelines.compile import REPO_ROOT


def run_template(template_name, inputs, outputs_dir, extra_env=None):
    """Run one template of the train-upload WorkflowTemplate."""
    return run_workflow_template("train_upload", template_name, inputs, outputs_dir, extra_env)


def run_workflow_template(workflow_name, template_name, inputs, outputs_dir, extra_env=None):
    """Run one template of a compiled WorkflowTemplate with its own command, args and env."""
    workflow = yaml.safe_load((REPO_ROOT / f"pipelines/compiled/{workflow_name}.argo.yaml").read_text())
    template = next(t for t in workflow["spec"]["templates"] if t["name"] == template_name)
    script = template["script"]
    # Argo renders {{inputs.parameters}} with every declared input, defaults filled in.
    values = {p["name"]: p["default"] for p in template["inputs"]["parameters"] if "default" in p} | inputs
    args_file = outputs_dir / f"{template_name}-inputs.json"
    args_file.write_text(json.dumps([{"name": k, "value": v} for k, v in values.items()]))
    env = {**os.environ, **{e["name"]: e["value"] for e in script.get("env", [])},
           "hera__outputs_directory": str(outputs_dir), **(extra_env or {})}
    command = [sys.executable if script["command"] == ["python"] else script["command"][0], *script["args"],
               str(args_file)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_train_then_upload_through_the_hera_runner(tmp_path, isolated_state):
    trained = run_template("train", {"framework": "sklearn", "dataset": "iris", "algorithm": "logreg"}, tmp_path)
    assert trained.returncode == 0, trained.stderr
    model_dir = tmp_path / "artifacts" / "model"
    manifest = read_manifest(model_dir)
    verify_directory(model_dir, manifest)
    assert (tmp_path / "parameters" / "model-digest").read_text() == manifest.model_digest
    assert float((tmp_path / "parameters" / "accuracy").read_text()) == manifest.metrics["accuracy"]
    assert json.loads((tmp_path / "artifacts" / "metrics").read_text())["n_test"] == manifest.metrics["n_test"]

    # Argo places the input artifact at the template's declared path; do the same.
    workflow = yaml.safe_load((REPO_ROOT / "pipelines/compiled/train_upload.argo.yaml").read_text())
    upload = next(t for t in workflow["spec"]["templates"] if t["name"] == "upload")
    artifact_path = Path(upload["inputs"]["artifacts"][0]["path"])
    shutil.rmtree(artifact_path, ignore_errors=True)
    shutil.copytree(model_dir, artifact_path)
    try:
        uploaded = run_template("upload", {"to": "pvc://my-models-pvc/iris"}, tmp_path,
                                {"MESHSERVE_STORAGE_SECRET_DIR": str(tmp_path / "no-secret")})
    finally:
        shutil.rmtree(artifact_path, ignore_errors=True)
    assert uploaded.returncode == 0, uploaded.stderr
    storage_uri = (tmp_path / "parameters" / "storage-uri").read_text()
    assert storage_uri == f"pvc://my-models-pvc/iris/{manifest.version_id}"
    assert (isolated_state / "pvc" / "my-models-pvc" / "iris" / manifest.version_id).is_dir()


def test_runner_failure_is_a_non_zero_exit(tmp_path):
    failed = run_template("train", {"framework": "sklearn", "dataset": "nope"}, tmp_path)
    assert failed.returncode != 0
    assert "dataset: unknown dataset 'nope'" in failed.stderr
