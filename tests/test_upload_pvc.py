import shutil

import pytest

from components.errors import IntegrityError, InvalidInputError, StorageError
from components.manifest import MANIFEST_FILENAME, read_manifest, verify_directory
from components.storage import upload_model
from components.storage.filesystems import pvc_root


def test_publish_to_pvc_is_a_complete_verified_version(digits_model, isolated_state):
    result = upload_model(digits_model, "pvc://models/digits")
    manifest = read_manifest(digits_model)
    assert result.published and result.storage_uri == f"pvc://models/digits/{manifest.version_id}"
    published = isolated_state / "pvc" / "models" / "digits" / manifest.version_id
    assert pvc_root() == isolated_state / "pvc"
    verify_directory(published, read_manifest(published))
    assert not list((published.parent / ".staging").iterdir())


def test_republishing_the_same_model_is_a_no_op(digits_model):
    first = upload_model(digits_model, "pvc://models/digits")
    second = upload_model(digits_model, "pvc://models/digits")
    assert second.storage_uri == first.storage_uri
    assert (second.published, second.bytes_uploaded) == (False, 0)


def test_a_different_model_under_an_existing_version_is_refused(digits_model, tmp_path):
    upload_model(digits_model, "pvc://models/digits", version="prod")
    from components.training import TrainConfig, train_model

    other = train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "iris").model_dir
    with pytest.raises(InvalidInputError, match=r"^version: pvc://models/digits/prod already holds a different"):
        upload_model(other, "pvc://models/digits", version="prod")


def test_corrupted_model_is_never_published(digits_model, tmp_path, isolated_state):
    copy = tmp_path / "m"
    shutil.copytree(digits_model, copy)
    (copy / "model.joblib").write_bytes(b"truncated")
    with pytest.raises(IntegrityError, match="corrupted"):
        upload_model(copy, "pvc://models/digits")
    assert not (isolated_state / "pvc").exists()


def test_target_that_is_a_file_is_refused(digits_model, isolated_state):
    (isolated_state / "pvc").mkdir(parents=True)
    (isolated_state / "pvc" / "models").write_text("not a directory")
    with pytest.raises(StorageError, match=r"^to: cannot write under pvc://models/x"):
        upload_model(digits_model, "pvc://models/x")


def test_pvc_root_follows_the_pod_mount(digits_model, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHSERVE_PVC_ROOT", str(tmp_path / "mnt"))
    result = upload_model(digits_model, "pvc://my-models-pvc/mnist")
    version = result.storage_uri.rsplit("/", 1)[1]
    assert (tmp_path / "mnt" / "my-models-pvc" / "mnist" / version / MANIFEST_FILENAME).is_file()


def test_bad_version_name(digits_model):
    with pytest.raises(InvalidInputError, match="^version: '../x' is not a valid version name"):
        upload_model(digits_model, "pvc://models/d", version="../x")


def test_in_a_pod_claims_are_under_mnt_pvc(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert str(pvc_root()) == "/mnt/pvc"


def test_read_published_manifest(digits_model):
    from components.storage import read_published_manifest

    result = upload_model(digits_model, "pvc://models/digits")
    assert read_published_manifest(result.storage_uri).model_digest == result.manifest.model_digest
    with pytest.raises(InvalidInputError, match="^storage_uri: pvc://models/digits is not a published model version"):
        read_published_manifest("pvc://models/digits")


def test_a_users_files_at_the_version_are_refused_and_kept(digits_model, isolated_state):
    important = isolated_state / "pvc" / "models" / "shared" / "important"
    important.mkdir(parents=True)
    (important / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match=r"^version: pvc://models/shared/important already holds files"):
        upload_model(digits_model, "pvc://models/shared", version="important")
    assert [p.name for p in important.iterdir()] == ["notes.txt"]
    assert (important / "notes.txt").read_text() == "mine"


def test_a_plain_file_in_the_way_is_refused_and_kept(digits_model, isolated_state):
    shared = isolated_state / "pvc" / "models" / "shared"
    shared.mkdir(parents=True)
    (shared / "README").write_text("read me")
    with pytest.raises(InvalidInputError, match=r"^version: pvc://models/shared/README already holds a file"):
        upload_model(digits_model, "pvc://models/shared", version="README")
    assert (shared / "README").read_text() == "read me"
