"""The KFP pipelines (DAGs) built from meshserve's components."""

from kfp import dsl, kubernetes

from components.steps.cluster import (
    MODELS_CLAIM,
    PVC_MOUNT_ROOT,
    STORAGE_ENV,
    STORAGE_SECRET,
    STORAGE_SECRET_MOUNT,
)
from components.steps.train.kfp_component import train
from components.steps.upload.kfp_component import upload


def with_model_storage(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Mount the models claim and the (optional) storage Secret into a task that touches storage."""
    kubernetes.mount_pvc(task, pvc_name=MODELS_CLAIM, mount_path=f"{PVC_MOUNT_ROOT}/{MODELS_CLAIM}")
    kubernetes.use_secret_as_volume(task, secret_name=STORAGE_SECRET, mount_path=STORAGE_SECRET_MOUNT,
                                    optional=True)
    for name, value in STORAGE_ENV.items():
        task.set_env_variable(name, value)
    return task


@dsl.pipeline(name="meshserve-train-upload", description="Train and evaluate a model, then publish it as a version")
def train_upload_pipeline(
    dataset: str = "digits",
    framework: str = "sklearn",
    algorithm: str = "",
    storage_prefix: str = f"pvc://{MODELS_CLAIM}/meshserve",
    seed: int = 0,
) -> str:
    """train → upload; returns the storageUri of the published version."""
    trained = train(framework=framework, dataset=dataset, algorithm=algorithm, seed=seed)
    trained.set_display_name("train")
    published = with_model_storage(upload(model=trained.outputs["model"], to=storage_prefix))
    published.set_display_name("upload")
    return published.outputs["storage_uri"]
