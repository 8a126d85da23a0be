"""Read what a published version holds, given the storageUri the upload step returned."""

from __future__ import annotations

import json

from components.errors import InvalidInputError
from components.manifest import MANIFEST_FILENAME, ModelManifest
from components.storage.filesystems import open_store
from components.storage.publish import storage_errors
from components.storage.uri import parse_storage_uri


def read_published_manifest(storage_uri: str) -> ModelManifest:
    """The manifest of a published version; a location without one is not a published version."""
    uri = parse_storage_uri(storage_uri, field="storage_uri")
    with storage_errors(uri):
        store = open_store(uri)
        marker = f"{store.base}/{MANIFEST_FILENAME}"
        if not store.fs.exists(marker):
            raise InvalidInputError("storage_uri", f"{uri} is not a published model version",
                                    "pass the storageUri printed by the upload step")
        return ModelManifest.from_dict(json.loads(store.fs.cat_file(marker)))
