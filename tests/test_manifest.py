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
    with pytest.raises(InvalidInputError, match="not strict JSON"):
        read_manifest(tmp_path)


def test_a_link_out_of_the_model_directory_is_refused_at_upload(digits_model, tmp_path):
    from components.manifest import digest_directory, write_manifest
    from components.storage import upload_model

    copy = tmp_path / "m"
    shutil.copytree(digits_model, copy)
    (copy / "extra.txt").symlink_to("/etc/passwd")
    manifest = read_manifest(copy)
    files = {**manifest.files, "extra.txt": sha256_file(copy / "extra.txt")}
    forged = ModelManifest(**{**manifest.__dict__, "files": files})
    write_manifest(copy, forged)
    with pytest.raises(IntegrityError, match=r"^model: extra.txt links outside"):
        upload_model(copy, "pvc://models/x")
    with pytest.raises(IntegrityError, match="links outside"):
        digest_directory(copy)


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../b", "./model.joblib", "a//b", "a\\b"])
def test_a_manifest_path_that_leaves_the_directory_is_refused(digits_model, path):
    data = json.loads((digits_model / MANIFEST_FILENAME).read_text())
    data["files"] = {**data["files"], path: "0" * 64}
    data.pop("model_digest")
    with pytest.raises(IntegrityError, match="a path that leaves the model directory"):
        ModelManifest.from_dict(data)


def test_a_model_changed_after_its_check_is_never_loaded(digits_model, tmp_path):
    from components.serving.models import SklearnModel

    copy = tmp_path / "m"
    shutil.copytree(digits_model, copy)
    model = SklearnModel("digits", copy)
    verify_directory(copy, model.manifest)
    (copy / "model.joblib").write_bytes(b"a pickle swapped in after the check")
    with pytest.raises(IntegrityError, match="model.joblib does not match the manifest"):
        model._load_framework_model()
