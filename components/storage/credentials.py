"""Credentials and endpoints for object stores, from the environment or a mounted Secret.

In a pod the Secret is mounted as a directory (one file per key, named like the environment
variable), pointed to by MESHSERVE_STORAGE_SECRET_DIR; environment variables win over files.
Nothing here logs or returns values in error messages.
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET_DIR_ENV = "MESHSERVE_STORAGE_SECRET_DIR"

S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
           "S3_ENDPOINT", "AWS_DEFAULT_REGION")
OSS_KEYS = ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_ENDPOINT", "OSS_PROTOCOL", "OSS_S3_ADDRESSING")


def lookup(key: str) -> str | None:
    """The value of one setting: environment first, then the mounted Secret directory."""
    value = os.environ.get(key)
    if value:
        return value
    secret_dir = os.environ.get(SECRET_DIR_ENV)
    if secret_dir:
        path = Path(secret_dir) / key
        if path.is_file():
            return path.read_text().strip() or None
    return None


def settings(keys: tuple[str, ...]) -> dict[str, str]:
    """The subset of `keys` that is set."""
    return {key: value for key in keys if (value := lookup(key))}
