"""Model directories of any size for storage tests and benchmarks (valid manifest, random bytes)."""

from __future__ import annotations

import os
from pathlib import Path

from components.manifest import InputSpec, ModelManifest, digest_directory, write_manifest


def make_model_dir(path: Path, total_bytes: int, files: int = 1) -> ModelManifest:
    """Write `files` random files adding up to `total_bytes` plus a manifest that lists them."""
    path.mkdir(parents=True, exist_ok=True)
    size = total_bytes // files
    for index in range(files):
        (path / f"shard-{index:03d}.bin").write_bytes(os.urandom(size))
    manifest = ModelManifest(name="blob", framework="sklearn", format="joblib",
                             input=InputSpec("input-0", [-1, 4], "FP32"), files=digest_directory(path))
    write_manifest(path, manifest)
    return manifest
