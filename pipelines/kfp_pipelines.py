"""The KFP pipelines (DAGs) built from meshserve's components."""

from kfp import dsl

from components.steps.train.kfp_component import train
from components.steps.upload.kfp_component import upload


@dsl.pipeline(name="meshserve-train-upload", description="Train and evaluate a model, then publish it as a version")
def train_upload_pipeline(
    dataset: str = "digits",
    framework: str = "sklearn",
    algorithm: str = "",
    storage_prefix: str = "pvc://models/meshserve",
    seed: int = 0,
) -> str:
    """train → upload; returns the storageUri of the published version."""
    trained = train(framework=framework, dataset=dataset, algorithm=algorithm, seed=seed)
    trained.set_display_name("train")
    published = upload(model=trained.outputs["model"], to=storage_prefix)
    published.set_display_name("upload")
    return published.outputs["storage_uri"]
