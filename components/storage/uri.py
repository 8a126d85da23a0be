"""Storage URIs: `pvc://CLAIM/PATH`, `s3://BUCKET/PREFIX` and `oss://BUCKET/PREFIX`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.errors import InvalidInputError

SCHEMES = ("pvc", "s3", "oss")
STORAGE_URI = re.compile(  # scheme://root/path, the form every storage URI has
    r"^(?P<scheme>[a-z0-9]+)://(?P<root>[^/]+)(?:/(?P<path>.*))?$")
# DNS-1123 for claims; S3/OSS bucket naming rules for buckets.
_ROOT_RULES = {
    "pvc": re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"),
    "s3": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "oss": re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
}


@dataclass(frozen=True)
class StorageUri:
    """A parsed storage location: scheme, root (claim or bucket) and a path without edge slashes."""

    scheme: str
    root: str
    path: str

    def child(self, name: str) -> StorageUri:
        """The location of `name` below this one."""
        return StorageUri(self.scheme, self.root, f"{self.path}/{name}" if self.path else name)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.root}/{self.path}" if self.path else f"{self.scheme}://{self.root}"


def parse_storage_uri(text: str, field: str = "to") -> StorageUri:
    """Parse and check a storage URI; anything else is an error naming the field."""
    match = STORAGE_URI.fullmatch(text or "")
    if not match:
        raise InvalidInputError(field, f"{text!r} is not a storage URI",
                                "use pvc://CLAIM/PATH, s3://BUCKET/PREFIX or oss://BUCKET/PREFIX")
    scheme, root = match["scheme"], match["root"]
    if scheme not in SCHEMES:
        choices = ", ".join(f"{known}://" for known in SCHEMES)
        raise InvalidInputError(field, f"unsupported scheme {scheme}://", f"use one of {choices}")
    if not _ROOT_RULES[scheme].fullmatch(root):
        kind = "claim" if scheme == "pvc" else "bucket"
        raise InvalidInputError(field, f"{root!r} is not a valid {kind} name",
                                f"use a lower-case DNS-style {kind} name")
    path = (match["path"] or "").strip("/")
    if path and any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidInputError(field, f"path {path!r} has empty, '.' or '..' segments",
                                "use a plain prefix like models/digits")
    return StorageUri(scheme, root, path)


_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def published_version_name(storage_uri: str) -> str:
    """The version name a storage URI was published under: its last path segment, when that is a valid
    version name ("" otherwise, or at a root)."""
    path = parse_storage_uri(storage_uri, field="storage_uri").path
    name = path.rsplit("/", 1)[-1] if path else ""
    return name if _VERSION_NAME.fullmatch(name) else ""
