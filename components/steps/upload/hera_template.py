"""The upload step as a Hera script template."""

from pathlib import Path
from typing import Annotated

from hera.workflows import Artifact, Parameter, script

from components.steps.hera_storage import STORAGE_ENV_VARS, STORAGE_MOUNTS
from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="upload", volume_mounts=STORAGE_MOUNTS, env=STORAGE_ENV_VARS)
def upload(
    model: Annotated[Path, Artifact(name="model", path="/tmp/meshserve/model")],
    to: str,
    storage_uri: Annotated[Path, Parameter(name="storage-uri", output=True)],
    version: str = "",
) -> None:
    """Publish the model directory under `to`; outputs the storageUri for the deploy step."""
    from components.steps.errors import step_errors
    from components.steps.upload.core import run_upload

    with step_errors("upload"):
        storage_uri.write_text(run_upload(model, to, version).storage_uri)
