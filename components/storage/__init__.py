"""Model storage: parse a storage URI, open it with credentials from the environment, publish atomically."""

from components.storage.publish import UploadResult, upload_model
from components.storage.published import read_published_manifest
from components.storage.uri import SCHEMES, StorageUri, parse_storage_uri

__all__ = ["SCHEMES", "StorageUri", "UploadResult", "parse_storage_uri", "read_published_manifest", "upload_model"]
