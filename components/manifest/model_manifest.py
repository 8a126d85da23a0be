"""Model manifest: what a model directory holds, how to feed it, and the sha256 of every file.

The manifest lives in the model directory as `meshserve-model.json`. It is written last by training,
checked before and after upload, and read by the serving runtimes and the promotion gate. The model
digest (a sha256 over the sorted file digests) identifies a model version independently of where it
is stored, so re-uploading the same model is recognisably the same version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.errors import IntegrityError, InvalidInputError
from components.inputs import clipped, parse_json, read_bounded

MANIFEST_FILENAME = "meshserve-model.json"
MANIFEST_LIMIT = 1 << 20  # a manifest lists file digests and metrics: a few kilobytes
SCHEMA_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputSpec:
    """The model's single input tensor, as the Open Inference Protocol describes it."""

    name: str
    shape: list[int]
    datatype: str


@dataclass(frozen=True)
class ModelManifest:
    """Everything a later step needs to know about a trained model directory."""

    name: str
    framework: str
    format: str
    input: InputSpec
    files: dict[str, str]
    training: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def model_digest(self) -> str:
        """sha256 over the sorted (path, sha256) pairs: the identity of this model's bytes."""
        return digest_of_files(self.files)

    @property
    def version_id(self) -> str:
        """A short, content-derived version name for storage paths."""
        return "v" + self.model_digest[:12]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, including the derived digest for readers that do not recompute it."""
        data = asdict(self)
        data["model_digest"] = self.model_digest
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        """Parse the JSON form; a recorded digest that disagrees with the files is refused."""
        if not isinstance(data, dict):
            raise InvalidInputError(MANIFEST_FILENAME, f"holds a {type(data).__name__}, not a manifest object",
                                    "re-run the train step")
        data = dict(data)
        recorded_digest = data.pop("model_digest", None)
        try:
            manifest = cls(**{**data, "input": InputSpec(**data["input"])})
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(
                MANIFEST_FILENAME, f"malformed manifest ({exc})", "re-run the train step to regenerate it"
            ) from None
        unsafe = sorted(path for path in manifest.files if not _is_plain_relative(path))
        if unsafe:
            raise IntegrityError(MANIFEST_FILENAME,
                                 f"lists {clipped(unsafe[0])}, a path that leaves the model directory",
                                 "list only relative paths inside it (no '/' at the start, no '..')")
        if recorded_digest is not None and recorded_digest != manifest.model_digest:
            raise IntegrityError(
                MANIFEST_FILENAME, "model_digest does not match the listed files", "re-run the train step"
            )
        return manifest


def _is_plain_relative(path: object) -> bool:
    """A relative POSIX path with no empty, '.' or '..' part and no backslash (a path that stays inside)."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_of_files(files: dict[str, str]) -> str:
    """sha256 over sorted `path sha256` lines."""
    lines = "".join(f"{path} {files[path]}\n" for path in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def digest_directory(model_dir: Path) -> dict[str, str]:
    """sha256 of every regular file below `model_dir` (the manifest itself excluded), by relative path. A
    symbolic link that leads out of the directory is refused: its target would be published or loaded as a
    file of the model (a link to /etc/passwd)."""
    root = Path(model_dir).resolve()
    digests = {}
    for path in sorted(Path(model_dir).rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise IntegrityError("model", f"{path.relative_to(model_dir).as_posix()} links outside {model_dir}",
                                 "replace the link with the file itself, or remove it")
        if path.is_file() and path.name != MANIFEST_FILENAME:
            digests[path.relative_to(model_dir).as_posix()] = sha256_file(path)
    return digests


def write_manifest(model_dir: Path, manifest: ModelManifest) -> Path:
    """Write the manifest into the model directory and return its path."""
    path = model_dir / MANIFEST_FILENAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(model_dir: Path) -> ModelManifest:
    """Read a model directory's manifest; a missing or unparsable one is an input error."""
    path = Path(model_dir) / MANIFEST_FILENAME
    if not Path(model_dir).is_dir():
        raise InvalidInputError("model", f"{model_dir} is not a directory", "pass the train step's model output")
    if not path.is_file():
        raise InvalidInputError(
            "model", f"{model_dir} has no {MANIFEST_FILENAME}", "pass a directory written by `meshserve train`"
        )
    return ModelManifest.from_dict(parse_manifest_text(read_bounded(path, MANIFEST_FILENAME, MANIFEST_LIMIT)))


def parse_manifest_text(text: str) -> Any:
    """A manifest file's JSON, strictly (no duplicate keys, no NaN); not yet checked as a manifest."""
    try:
        return parse_json(text)
    except ValueError as exc:
        raise InvalidInputError(MANIFEST_FILENAME, f"not strict JSON ({clipped(str(exc), 120)})",
                                "re-run the train step") from None


def verify_directory(model_dir: Path, manifest: ModelManifest) -> None:
    """Refuse a model directory whose files differ from the manifest: missing, extra or changed."""
    actual = digest_directory(Path(model_dir))
    missing = sorted(set(manifest.files) - set(actual))
    extra = sorted(set(actual) - set(manifest.files))
    changed = sorted(p for p in set(actual) & set(manifest.files) if actual[p] != manifest.files[p])
    for kind, paths in (("missing", missing), ("unexpected", extra), ("corrupted (sha256 mismatch)", changed)):
        if paths:
            raise IntegrityError(
                "model", f"{kind} file {paths[0]} in {model_dir}", "re-run the train step to rebuild the model"
            )
