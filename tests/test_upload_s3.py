"""Upload against a real S3-protocol server (moto's server mode, IAM auth on) on 127.0.0.1."""

import os
import signal
import subprocess
import sys
import time

import pytest

from components.errors import IntegrityError, InvalidInputError, StorageError
from components.manifest import MANIFEST_FILENAME, read_manifest
from components.storage import publish, upload_model
from tests.support.models import make_model_dir


def _keys(server, bucket, prefix=""):
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def test_upload_publishes_every_file_and_the_manifest_last(digits_model, s3_env, bucket):
    result = upload_model(digits_model, f"s3://{bucket}/models/digits")
    version = read_manifest(digits_model).version_id
    assert result.storage_uri == f"s3://{bucket}/models/digits/{version}"
    assert _keys(s3_env, bucket) == [f"models/digits/{version}/{MANIFEST_FILENAME}",
                                     f"models/digits/{version}/model.joblib"]
    body = s3_env.client().get_object(Bucket=bucket, Key=f"models/digits/{version}/model.joblib")["Body"].read()
    assert body == (digits_model / "model.joblib").read_bytes()


def test_reupload_is_a_no_op(digits_model, s3_env, bucket):
    upload_model(digits_model, f"s3://{bucket}/m")
    again = upload_model(digits_model, f"s3://{bucket}/m")
    assert not again.published


def test_credentials_from_a_mounted_secret_directory(digits_model, s3_server, bucket, tmp_path, monkeypatch):
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    for key, value in s3_server.env().items():
        (secret_dir / key).write_text(value + "\n")
    monkeypatch.setenv("MESHSERVE_STORAGE_SECRET_DIR", str(secret_dir))
    assert upload_model(digits_model, f"s3://{bucket}/m").published


def test_wrong_credentials_fail_clearly_and_publish_nothing(digits_model, s3_env, bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
    with pytest.raises(StorageError, match=rf"^credentials: access to s3://{bucket}/m was denied; set AWS_") as info:
        upload_model(digits_model, f"s3://{bucket}/m")
    assert "not-the-secret" not in str(info.value)
    assert _keys(s3_env, bucket) == []


def test_missing_bucket(digits_model, s3_env):
    with pytest.raises(StorageError, match=r"^to: bucket 'no-such-bucket' does not exist or is not visible"):
        upload_model(digits_model, "s3://no-such-bucket/m")


def test_checksum_mismatch_in_the_store_is_refused(digits_model, s3_env, bucket, monkeypatch):
    real_stage = publish._stage

    def stage_then_corrupt(store, model_dir, manifest, staging):
        sent = real_stage(store, model_dir, manifest, staging)
        store.fs.pipe_file(f"{staging}/model.joblib", b"bit rot")  # the store now holds other bytes
        return sent

    monkeypatch.setattr(publish, "_stage", stage_then_corrupt)
    with pytest.raises(IntegrityError, match=r"^to: stored copy of model.joblib has sha256"):
        upload_model(digits_model, f"s3://{bucket}/m")
    assert _keys(s3_env, bucket) == []  # neither a version nor the staging prefix is left


def test_oss_through_its_s3_compatible_api(digits_model, s3_server, bucket, monkeypatch):
    monkeypatch.setenv("OSS_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", s3_server.secret_key)
    monkeypatch.setenv("OSS_PROTOCOL", "s3")
    monkeypatch.setenv("OSS_S3_ADDRESSING", "path")
    result = upload_model(digits_model, f"oss://{bucket}/models")
    assert result.storage_uri.startswith(f"oss://{bucket}/models/v")
    assert len(_keys(s3_server, bucket)) == 2


def test_oss_without_endpoint_names_the_setting(digits_model):
    with pytest.raises(Exception, match=r"^OSS_ENDPOINT: not set; set it"):
        upload_model(digits_model, "oss://bucket/models")


def test_interrupted_upload_publishes_nothing_and_a_rerun_completes(s3_env, bucket, tmp_path):
    model = tmp_path / "big"
    manifest = make_model_dir(model, 60 << 20, files=30)
    env = {**os.environ, **s3_env.env()}
    command = [sys.executable, "-m", "pipelines.cli", "upload", "--model", str(model), "--to", f"s3://{bucket}/m"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_keys(s3_env, bucket, "m/.staging/")) < 3:
        assert process.poll() is None, "upload finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _keys(s3_env, bucket, f"m/{manifest.version_id}") == []
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    published = _keys(s3_env, bucket, f"m/{manifest.version_id}/")
    assert len(published) == 31 and published[0].endswith(MANIFEST_FILENAME)


@pytest.mark.parametrize("scheme, env, expected", [
    ("s3", {"AWS_ENDPOINT_URL": "{endpoint}"}, "credentials: no credentials for s3://"),
    ("s3", {"AWS_ENDPOINT_URL": "http://127.0.0.1:{closed}", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
     "endpoint: cannot reach the storage endpoint of s3://"),
    ("oss", {"OSS_ENDPOINT": "http://127.0.0.1:{closed}"}, "endpoint: cannot reach the OSS endpoint of oss://"),
])
def test_storage_failures_are_one_line_naming_the_fix(scheme, env, expected, s3_server, digits_model, monkeypatch,
                                                      capsys):
    """Issue 13, finding 3: no traceback, no raw client dict."""
    from pipelines.cli import main
    from tests.support.servers import free_port

    closed = free_port()
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(endpoint=s3_server.endpoint, closed=closed))
    code = main(["upload", "--model", str(digits_model), "--to", f"{scheme}://models-x/p"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_objects_under_the_version_that_meshserve_did_not_publish_are_refused_and_kept(digits_model, s3_env, bucket):
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key="shared/important/data.csv", Body=b"a,b\n1,2\n")
    client.put_object(Bucket=bucket, Key="shared/README", Body=b"read me")
    for version, what in (("important", "files meshserve did not publish"), ("README", "a file")):
        with pytest.raises(InvalidInputError, match=f"^version: s3://{bucket}/shared/{version} already holds {what}"):
            upload_model(digits_model, f"s3://{bucket}/shared", version=version)
    assert _keys(s3_env, bucket) == ["shared/README", "shared/important/data.csv"]


def test_an_interrupted_copy_carries_the_marker_and_is_redone(digits_model, s3_env, bucket):
    version = read_manifest(digits_model).version_id
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key=f"m/{version}/{publish.PUBLISHING_MARKER}", Body=b"earlier-run")
    client.put_object(Bucket=bucket, Key=f"m/{version}/model.joblib", Body=b"half copied")
    result = upload_model(digits_model, f"s3://{bucket}/m")
    assert result.published
    assert _keys(s3_env, bucket, "m/") == [f"m/{version}/{MANIFEST_FILENAME}", f"m/{version}/model.joblib"]
