import json
import shutil

import pytest

from components.errors import IntegrityError, InvalidInputError
from components.manifest import MANIFEST_FILENAME, ModelManifest, read_manifest, sha256_file, verify_directory


def test_manifest_lists_every_file_with_its_sha256(digits_model):
    manifest = read_manifest(digits_model)
    assert manifest.files == {"model.joblib": sha256_file(digits_model / "model.joblib")}
    verify_directory(digits_model, manifest)
    assert manifest.version_id == "v" + manifest.model_digest[:12]


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.joblib").write_bytes(b"x"), "corrupted"),
    (lambda d: (d / "model.joblib").unlink(), "missing"),
    (lambda d: (d / "extra.bin").write_bytes(b"x"), "unexpected"),
])
def test_verify_refuses_changed_directories(digits_model, tmp_path, damage, message):
    copy = tmp_path / "m"
    shutil.copytree(digits_model, copy)
    damage(copy)
    with pytest.raises(IntegrityError, match=message):
        verify_directory(copy, read_manifest(copy))


def test_recorded_digest_must_match_the_files(digits_model):
    data = json.loads((digits_model / MANIFEST_FILENAME).read_text())
    data["files"]["model.joblib"] = "0" * 64
    with pytest.raises(IntegrityError, match="model_digest does not match"):
        ModelManifest.from_dict(data)


def test_missing_or_malformed_manifest(tmp_path):
    with pytest.raises(InvalidInputError, match="is not a directory"):
        read_manifest(tmp_path / "absent")
    with pytest.raises(InvalidInputError, match=f"has no {MANIFEST_FILENAME}"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILENAME).write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        read_manifest(tmp_path)
