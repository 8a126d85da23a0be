"""The upload step as a Hera script template."""

from pathlib import Path
from typing import Annotated

from hera.workflows import Artifact, Env, Parameter, script
from hera.workflows.models import VolumeMount

from components.steps.cluster import (
    MODELS_CLAIM,
    MODELS_VOLUME,
    PVC_MOUNT_ROOT,
    STORAGE_ENV,
    STORAGE_SECRET_MOUNT,
    STORAGE_SECRET_VOLUME,
)
from components.steps.images import STEP_IMAGE

_STORAGE_MOUNTS = [
    VolumeMount(name=MODELS_VOLUME, mount_path=f"{PVC_MOUNT_ROOT}/{MODELS_CLAIM}"),
    VolumeMount(name=STORAGE_SECRET_VOLUME, mount_path=STORAGE_SECRET_MOUNT, read_only=True),
]


@script(constructor="runner", image=STEP_IMAGE, name="upload", volume_mounts=_STORAGE_MOUNTS,
        env=[Env(name=name, value=value) for name, value in STORAGE_ENV.items()])
def upload(
    model: Annotated[Path, Artifact(name="model", path="/tmp/meshserve/model")],
    to: str,
    storage_uri: Annotated[Path, Parameter(name="storage-uri", output=True)],
    version: str = "",
) -> None:
    """Publish the model directory under `to`; outputs the storageUri for the deploy step."""
    from components.steps.upload.core import run_upload

    storage_uri.write_text(run_upload(model, to, version).storage_uri)
