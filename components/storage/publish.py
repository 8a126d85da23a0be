"""`upload_model`: the plain-Python core of the upload step.

A version is published atomically:
1. the local model directory is checked against its manifest (a corrupted model never leaves);
2. every file is written under `<prefix>/.staging/<version>-<random>/`;
3. every staged object is read back and its sha256 compared with the manifest;
4. the version is published at `<prefix>/<version>/`: by one directory rename where the store has
   atomic renames (a PVC), otherwise by server-side copies between a publishing marker (written first)
   and the manifest (written last), so the manifest marks a complete version;
5. the staging prefix is removed, whatever happened.
Only meshserve's own leftovers are ever reclaimed: a staging prefix, or a version holding its publishing
marker and no manifest (an interrupted copy). Anything else already at `<prefix>/<version>` (a user's
files, a plain file) is refused, never replaced.
The storageUri handed to the runtimes is returned only after step 4. Re-publishing the same model to
the same version is a no-op; a different model under an existing version is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.errors import IntegrityError, InvalidInputError, MeshserveError, StorageError
from components.manifest import MANIFEST_FILENAME, ModelManifest, read_manifest, verify_directory
from components.storage.filesystems import OpenedStore, open_store
from components.storage.uri import StorageUri, parse_storage_uri

STAGING_DIR = ".staging"
PUBLISHING_MARKER = ".meshserve-publishing"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_READ_BLOCK = 8 << 20


@dataclass(frozen=True)
class UploadResult:
    """Where the model version now lives, and whether this call published it."""

    storage_uri: str
    manifest: ModelManifest
    published: bool
    bytes_uploaded: int
    seconds: float


def upload_model(model_dir: Path, to: str, version: str | None = None) -> UploadResult:
    """Publish a trained model directory as an immutable version under the `to` prefix."""
    started = time.perf_counter()
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    verify_directory(model_dir, manifest)
    base_uri = parse_storage_uri(to)
    version = _check_version(version or manifest.version_id)
    target_uri = base_uri.child(version)
    with storage_errors(base_uri):
        store = open_store(base_uri)
        final = f"{store.base}/{version}"
        if _already_published(store, final, manifest, target_uri):
            return UploadResult(str(target_uri), manifest, False, 0, _since(started))
        _refuse_foreign(store, final, target_uri)
        staging = f"{store.base}/{STAGING_DIR}/{version}-{uuid.uuid4().hex[:8]}"
        try:
            sent = _stage(store, model_dir, manifest, staging)
            verify_staged(store, staging, manifest)
            _publish(store, staging, final, manifest)
        finally:
            _remove(store, staging)
    return UploadResult(str(target_uri), manifest, True, sent, _since(started))


def _check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise InvalidInputError("version", f"{version!r} is not a valid version name", "use letters, digits, . _ -")
    return version


def _already_published(store: OpenedStore, final: str, manifest: ModelManifest, uri: StorageUri) -> bool:
    """True when `final` holds this exact model; a different model there is refused."""
    marker = f"{final}/{MANIFEST_FILENAME}"
    if not store.fs.exists(marker):
        return False
    existing = ModelManifest.from_dict(json.loads(store.fs.cat_file(marker)))
    if existing.model_digest != manifest.model_digest:
        raise InvalidInputError(
            "version", f"{uri} already holds a different model ({existing.version_id})",
            "pass another --version, or omit it to use the content-derived one",
        )
    return True


def _refuse_foreign(store: OpenedStore, final: str, uri: StorageUri) -> None:
    """Refuse a version location that holds anything but meshserve's own interrupted publish."""
    if not store.fs.exists(final) or store.fs.exists(f"{final}/{PUBLISHING_MARKER}"):
        return
    what = "a file" if store.fs.isfile(final) else "files meshserve did not publish (no manifest)"
    raise InvalidInputError("version", f"{uri} already holds {what}; nothing was changed",
                            "pass another --version, or move those files away")


def _stage(store: OpenedStore, model_dir: Path, manifest: ModelManifest, staging: str) -> int:
    """Copy every manifest-listed file under the staging prefix; return the bytes sent."""
    sent = 0
    for relative in sorted(manifest.files):
        local = model_dir / relative
        if store.posix:
            store.fs.makedirs(f"{staging}/{relative}".rsplit("/", 1)[0], exist_ok=True)
        store.fs.put_file(str(local), f"{staging}/{relative}")
        sent += local.stat().st_size
    return sent


def verify_staged(store: OpenedStore, staging: str, manifest: ModelManifest) -> None:
    """Read every staged object back and compare its sha256 with the manifest."""
    for relative, expected in sorted(manifest.files.items()):
        actual = _remote_sha256(store, f"{staging}/{relative}")
        if actual != expected:
            raise IntegrityError(
                "to", f"stored copy of {relative} has sha256 {actual[:12]}…, expected {expected[:12]}…",
                "nothing was published; check the store's health and retry",
            )


def _remote_sha256(store: OpenedStore, path: str) -> str:
    digest = hashlib.sha256()
    with store.fs.open(path, "rb", block_size=_READ_BLOCK) as handle:
        while chunk := handle.read(_READ_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def _publish(store: OpenedStore, staging: str, final: str, manifest: ModelManifest) -> None:
    """Make the staged version visible at `final` in one step a reader can rely on."""
    manifest_bytes = (json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    if store.fs.exists(final):
        store.fs.rm(final, recursive=True)  # our own interrupted publish (its marker checked): never referenced
    if store.posix:
        store.fs.pipe_file(f"{staging}/{MANIFEST_FILENAME}", manifest_bytes)
        Path(final).parent.mkdir(parents=True, exist_ok=True)
        Path(staging).rename(final)
        return
    store.fs.pipe_file(f"{final}/{PUBLISHING_MARKER}", staging.rsplit("/", 1)[-1].encode())
    for relative in sorted(manifest.files):
        store.fs.copy(f"{staging}/{relative}", f"{final}/{relative}")
    store.fs.pipe_file(f"{final}/{MANIFEST_FILENAME}", manifest_bytes)
    store.fs.rm(f"{final}/{PUBLISHING_MARKER}")


def _remove(store: OpenedStore, path: str) -> None:
    """Best-effort removal of the staging prefix (it is never read, so a leftover is harmless)."""
    try:
        if store.fs.exists(path):
            store.fs.rm(path, recursive=True)
    except OSError:
        pass


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


@contextmanager
def storage_errors(uri: StorageUri) -> Iterator[None]:
    """Turn the storage clients' exceptions into one-line errors that name the fix, never a secret."""
    kind = "claim" if uri.scheme == "pvc" else "bucket"
    try:
        yield
    except MeshserveError:
        raise
    except PermissionError:
        raise StorageError("credentials", f"access to {uri} was denied",
                           _credentials_fix(uri.scheme)) from None
    except FileNotFoundError:
        raise StorageError("to", f"{kind} {uri.root!r} does not exist or is not visible",
                           f"create the {kind} or fix the URI") from None
    except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
        raise StorageError("to", f"cannot write under {uri} ({exc.strerror})",
                           "pick a path that is a directory") from None
    except OSError as exc:
        # botocore's timeouts are OSErrors too (through requests' exceptions)
        raise (_oss_error(uri, exc) or _client_error(uri, exc)
               or StorageError("to", f"storage at {uri} failed: {_describe(exc)}", "check the endpoint and retry")
               ) from None
    except Exception as exc:
        translated = _client_error(uri, exc)
        if translated is None:
            raise
        raise translated from None


def _oss_error(uri: StorageUri, exc: OSError) -> StorageError | None:
    """ossfs reports oss2's error as a dict in the message (status -2: no answer); say what it means."""
    found = re.search(r"'status': (-?\d+)", str(exc))
    if uri.scheme != "oss" or found is None:
        return None
    status = int(found.group(1))
    if status < 0:
        return StorageError("endpoint", f"cannot reach the OSS endpoint of {uri}",
                            "check OSS_ENDPOINT and that the store answers")
    if status in (401, 403):
        return StorageError("credentials", f"access to {uri} was denied ({status})", _credentials_fix("oss"))
    if status == 404:
        return StorageError("to", f"bucket {uri.root!r} does not exist or is not visible", "create it or fix the URI")
    return StorageError("to", f"OSS answered {status} for {uri}", "check the endpoint, the bucket and the keys")


def _client_error(uri: StorageUri, exc: Exception) -> StorageError | None:
    """An object-store client's own exception (botocore, oss2) as a one-line error; None for anything else."""
    if not type(exc).__module__.startswith(("botocore", "aiobotocore", "oss2", "ossfs")):
        return None
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError("credentials", f"no credentials for {uri}", _credentials_fix(uri.scheme))
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return StorageError("endpoint", f"cannot reach the storage endpoint of {uri} ({name})",
                            "check AWS_ENDPOINT_URL (or OSS_ENDPOINT) and that the store answers")
    return StorageError("to", f"storage at {uri} failed ({name})", "check the endpoint, the bucket and the credentials")


def _credentials_fix(scheme: str) -> str:
    if scheme == "s3":
        return "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (env or MESHSERVE_STORAGE_SECRET_DIR)"
    if scheme == "oss":
        return "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (env or MESHSERVE_STORAGE_SECRET_DIR)"
    return "make the claim's mount writable by this user"


def _describe(exc: OSError) -> str:
    """A short cause without request details (URLs may carry presigned tokens)."""
    return exc.strerror or type(exc).__name__
