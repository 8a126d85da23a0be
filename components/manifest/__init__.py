"""The model manifest: the contract between training, upload and serving for one model directory."""

from components.manifest.model_manifest import (
    MANIFEST_FILENAME,
    InputSpec,
    ModelManifest,
    digest_directory,
    read_manifest,
    sha256_file,
    verify_directory,
    write_manifest,
)

__all__ = [
    "MANIFEST_FILENAME",
    "InputSpec",
    "ModelManifest",
    "digest_directory",
    "read_manifest",
    "sha256_file",
    "verify_directory",
    "write_manifest",
]
