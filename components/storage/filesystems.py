"""Open a storage URI as an fsspec filesystem plus the path of the URI inside it.

pvc:// resolves to a directory: the claim's mount in a pod (/mnt/pvc/CLAIM, where the pipelines mount
it) and, off-cluster, a folder under the local state directory; $MESHSERVE_PVC_ROOT overrides both.
s3:// uses s3fs against any S3-compatible endpoint. oss:// uses ossfs (Alibaba's OSS API), or s3fs
against OSS's S3-compatible endpoint when OSS_PROTOCOL=s3 (virtual-hosted addressing, as OSS requires;
OSS_S3_ADDRESSING=path for S3-protocol test servers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import InvalidInputError
from components.inputs import REQUEST_TIMEOUT_ENV, seconds_from_env
from components.storage import credentials
from components.storage.uri import StorageUri

PVC_ROOT_ENV = "MESHSERVE_PVC_ROOT"
S3_REQUEST_TIMEOUT_S = 60.0  # botocore's own default, per answer ($MESHSERVE_REQUEST_TIMEOUT_S overrides it)
CLAIM_MOUNT_ENV = "MESHSERVE_PVC_CLAIM_MOUNT"  # in a pod: where the one claim it mounts is, whatever its name
STATE_DIR_ENV = "MESHSERVE_STATE_DIR"


@dataclass(frozen=True)
class OpenedStore:
    """An fsspec filesystem, the URI's path inside it, and whether it is a POSIX directory tree.

    A POSIX tree (a mounted claim) needs directories created and renames them atomically; an object
    store has neither, and `makedirs` there would create buckets, which an upload must never do.
    """

    fs: Any
    base: str
    posix: bool


POD_PVC_ROOT = "/mnt/pvc"


def pvc_root() -> Path:
    """Where claims are mounted: $MESHSERVE_PVC_ROOT; in a pod /mnt/pvc; elsewhere <state dir>/pvc."""
    explicit = os.environ.get(PVC_ROOT_ENV)
    if explicit:
        return Path(explicit)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return Path(POD_PVC_ROOT)
    return Path(os.environ.get(STATE_DIR_ENV, ".meshserve")).resolve() / "pvc"


def claim_dir(claim: str) -> Path:
    """Where a claim's files are: in a pod that mounts its claim at $MESHSERVE_PVC_CLAIM_MOUNT (a pipeline whose
    claim name is a run parameter), there; else under `pvc_root()`."""
    mounted = os.environ.get(CLAIM_MOUNT_ENV)
    if mounted and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return Path(mounted)
    return pvc_root() / claim


def open_store(uri: StorageUri) -> OpenedStore:
    """The filesystem for a URI's scheme."""
    openers = {"pvc": _open_pvc, "s3": _open_s3, "oss": _open_oss}
    return openers[uri.scheme](uri)


def _open_pvc(uri: StorageUri) -> OpenedStore:
    from fsspec.implementations.local import LocalFileSystem

    root = claim_dir(uri.root)
    return OpenedStore(LocalFileSystem(), str(root / uri.path) if uri.path else str(root), True)


def _endpoint(values: dict[str, str], key: str) -> str:
    """The endpoint URL under `key`, refused when it carries user info: credentials belong in their own keys
    (a URL is printed in errors and logs; a key is not)."""
    from urllib.parse import urlsplit

    endpoint = values.get(key) or ""
    if "@" in urlsplit(endpoint).netloc:
        raise InvalidInputError(key, "the endpoint URL holds user info (name:password@)",
                                "drop it from the URL and set the access key and secret in their own variables")
    return endpoint


def _open_s3(uri: StorageUri) -> OpenedStore:
    values = credentials.settings(credentials.S3_KEYS)
    endpoint = _endpoint(values, "AWS_ENDPOINT_URL") or _endpoint(values, "S3_ENDPOINT")
    return OpenedStore(_s3fs(values.get("AWS_ACCESS_KEY_ID"), values.get("AWS_SECRET_ACCESS_KEY"),
                             values.get("AWS_SESSION_TOKEN"), endpoint, values.get("AWS_DEFAULT_REGION")),
                       _bucket_path(uri), False)


def _open_oss(uri: StorageUri) -> OpenedStore:
    values = credentials.settings(credentials.OSS_KEYS)
    endpoint = _endpoint(values, "OSS_ENDPOINT")
    if not endpoint:
        raise InvalidInputError(
            "OSS_ENDPOINT", "not set", "set it (e.g. https://oss-cn-hangzhou.aliyuncs.com) in the env or Secret"
        )
    key, secret = values.get("OSS_ACCESS_KEY_ID"), values.get("OSS_ACCESS_KEY_SECRET")
    protocol = values.get("OSS_PROTOCOL", "oss")
    if protocol == "s3":
        # OSS's S3-compatible API wants virtual-hosted addressing; OSS_S3_ADDRESSING=path for test servers.
        addressing = values.get("OSS_S3_ADDRESSING", "virtual")
        return OpenedStore(_s3fs(key, secret, None, endpoint, None, addressing), _bucket_path(uri), False)
    if protocol != "oss":
        raise InvalidInputError("OSS_PROTOCOL", f"unknown value {protocol!r}", "use oss (native) or s3")
    import ossfs

    return OpenedStore(ossfs.OSSFileSystem(key=key, secret=secret, endpoint=endpoint), _bucket_path(uri), False)


def _s3fs(key, secret, token, endpoint, region, addressing: str = "auto"):
    """An s3fs filesystem with no instance cache, so credentials never leak between calls."""
    import s3fs

    timeout = seconds_from_env(REQUEST_TIMEOUT_ENV) or S3_REQUEST_TIMEOUT_S
    config: dict[str, Any] = {"retries": {"max_attempts": 3, "mode": "standard"}, "connect_timeout": timeout,
                              "read_timeout": timeout}
    if addressing != "auto":
        config["s3"] = {"addressing_style": addressing}
    client_kwargs = {k: v for k, v in (("endpoint_url", endpoint), ("region_name", region)) if v}
    filesystem = s3fs.S3FileSystem(
        key=key, secret=secret, token=token, client_kwargs=client_kwargs, config_kwargs=config,
        skip_instance_cache=True, anon=False,
    )
    filesystem.retries = 1  # botocore retries already (3 attempts); s3fs's own 5 would multiply them
    return filesystem


def _bucket_path(uri: StorageUri) -> str:
    return f"{uri.root}/{uri.path}" if uri.path else uri.root
