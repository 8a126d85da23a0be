"""The upload step's core, called by the CLI, the KFP component and the Hera template."""

from __future__ import annotations

from pathlib import Path

from components.storage import UploadResult, upload_model


def run_upload(model_dir: Path, to: str, version: str | None = None) -> UploadResult:
    """Publish `model_dir` as an immutable version under `to`; return its storageUri."""
    return upload_model(Path(model_dir), to, version or None)
