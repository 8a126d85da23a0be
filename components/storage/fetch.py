"""Turn a published storageUri into a verified local model directory (what a storage initializer does)."""

from __future__ import annotations

import shutil
from pathlib import Path

from components.errors import InvalidInputError
from components.manifest import read_manifest, verify_directory
from components.storage.filesystems import open_store
from components.storage.publish import storage_errors
from components.storage.published import read_published_manifest
from components.storage.uri import parse_storage_uri


def materialize(storage_uri: str, cache_dir: Path) -> Path:
    """The model directory for a version: in place for pvc://, else downloaded once into `cache_dir`."""
    uri = parse_storage_uri(storage_uri, field="storage_uri")
    manifest = read_published_manifest(storage_uri)
    with storage_errors(uri):
        store = open_store(uri)
        if store.posix:
            local = Path(store.base)
        else:
            local = Path(cache_dir) / manifest.model_digest[:16]
            if not local.is_dir():
                partial = local.with_name(local.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                try:
                    store.fs.get(store.base + "/", str(partial), recursive=True)
                except BaseException:  # failed or interrupted: no half-downloaded copy left behind
                    shutil.rmtree(partial, ignore_errors=True)
                    raise
                partial.rename(local)
    if read_manifest(local).model_digest != manifest.model_digest:
        raise InvalidInputError("storage_uri", f"{storage_uri} changed while being read", "deploy again")
    verify_directory(local, manifest)
    return local
