"""Each KFP component, and the pipeline, executed by kfp.local (SubprocessRunner, use_venv=False)."""

import json
from pathlib import Path

import pytest

from components.manifest import read_manifest, verify_directory


@pytest.fixture
def kfp_local(isolated_state):
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(isolated_state / "kfp"),
               raise_on_error=True)
    return isolated_state


def test_train_component_outputs(kfp_local):
    from components.steps.train.kfp_component import train

    task = train(framework="sklearn", dataset="iris", algorithm="random_forest", seed=1)
    model_dir = Path(task.outputs["model"].path)
    verify_directory(model_dir, read_manifest(model_dir))
    metrics = task.outputs["metrics"].metadata
    assert 0.85 <= metrics["accuracy"] <= 1.0 and {"precision_setosa", "recall_virginica"} <= set(metrics)
    confusion = task.outputs["confusion"].metadata["confusionMatrix"]
    assert [c["displayName"] for c in confusion["annotationSpecs"]] == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, (row["row"] for row in confusion["rows"]))) == read_manifest(model_dir).metrics["n_test"]
    manifest = json.loads(Path(task.outputs["manifest"].path).read_text())
    assert manifest["model_digest"] == task.outputs["model"].metadata["model_digest"]


def test_upload_component_publishes(kfp_local, digits_model):
    from kfp import dsl

    from components.steps.upload.kfp_component import upload

    @dsl.pipeline
    def publish_existing(uri: str) -> str:
        imported = dsl.importer(artifact_uri=uri, artifact_class=dsl.Model, reimport=False)
        return upload(model=imported.output, to="pvc://models/digits").outputs["storage_uri"]

    storage_uri = publish_existing(uri=str(digits_model)).output
    version = read_manifest(digits_model).version_id
    assert storage_uri == f"pvc://models/digits/{version}"
    verify_directory(kfp_local / "pvc" / "models" / "digits" / version, read_manifest(digits_model))


def test_train_upload_pipeline_end_to_end(kfp_local):
    from pipelines.kfp_pipelines import train_upload_pipeline

    storage_uri = train_upload_pipeline(dataset="iris", framework="sklearn", storage_prefix="pvc://models/iris").output
    published = kfp_local / "pvc" / "models" / "iris" / storage_uri.rsplit("/", 1)[1]
    assert read_manifest(published).dataset["name"] == "iris"


def test_failing_component_fails_the_task(kfp_local):
    from components.steps.train.kfp_component import train

    with pytest.raises(RuntimeError, match="FAILURE"):
        train(framework="sklearn", dataset="nope")
