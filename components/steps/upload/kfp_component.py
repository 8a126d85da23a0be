"""The upload step as a KFP v2 component."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def upload(
    model: Input[Model],
    to: str,
    manifest: Output[Artifact],
    version: str = "",
) -> NamedTuple("UploadOutputs", [("storage_uri", str), ("model_digest", str)]):  # type: ignore[valid-type]  # KFP reads the outputs here
    """Publish the model directory under `to` (pvc://, s3://, oss://); returns the storageUri.

    Credentials come from the environment or the Secret mounted at MESHSERVE_STORAGE_SECRET_DIR.
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from components.steps.errors import step_errors
    from components.steps.upload.core import run_upload

    with step_errors("upload"):
        result = run_upload(Path(model.path), to, version)
        Path(manifest.path).write_text(json.dumps(result.manifest.to_dict(), indent=2, sort_keys=True))
        manifest.metadata.update({"storage_uri": result.storage_uri, "published": result.published})
        UploadOutputs = namedtuple("UploadOutputs", ["storage_uri", "model_digest"])
        return UploadOutputs(result.storage_uri, result.manifest.model_digest)
