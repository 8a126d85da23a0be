"""The `meshserve` command line, run as a user runs it: a subprocess, exit codes, one-line errors."""

import os
import subprocess
import sys

import pytest


def meshserve(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def assert_one_line_error(completed, pattern):
    assert completed.returncode == 2, completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert pattern in lines[0]


def test_train_then_upload(tmp_path, isolated_state):
    trained = meshserve("train", "--framework", "sklearn", "--dataset", "iris", "--algorithm", "logreg",
                        "--out", str(tmp_path / "iris"))
    assert trained.returncode == 0, trained.stderr
    assert "accuracy" in trained.stdout and (tmp_path / "iris" / "model.joblib").is_file()
    uploaded = meshserve("upload", "--model", str(tmp_path / "iris"), "--to", "pvc://models/iris")
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.startswith("published: pvc://models/iris/v")
    again = meshserve("upload", "--model", str(tmp_path / "iris"), "--to", "pvc://models/iris")
    assert "already published (no change)" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--framework", "sklearn", "--dataset", "cifar", "--out", "x"], "dataset: unknown dataset 'cifar'"),
    (["train", "--framework", "torch", "--dataset", "iris", "--out", "x"], "framework: unknown framework 'torch'"),
    (["train", "--framework", "sklearn", "--dataset", "iris", "--seed", "abc", "--out", "x"],
     "argument --seed: invalid int value"),
    (["train", "--framework", "sklearn", "--dataset", "mnist", "--data-uri", "/nonexistent", "--out", "x"],
     "data_uri: /nonexistent/train-images.idx3-ubyte does not exist"),
    (["upload", "--model", "/nonexistent", "--to", "pvc://models/x"], "model: /nonexistent is not a directory"),
    (["upload", "--model", ".", "--to", "pvc://models/x"], "has no meshserve-model.json"),
    (["train", "--dataset", "iris", "--out", "x"], "the following arguments are required: --framework"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    assert_one_line_error(meshserve(*args), message)


def test_unsupported_scheme(digits_model):
    assert_one_line_error(meshserve("upload", "--model", str(digits_model), "--to", "gs://b/x"),
                          "to: unsupported scheme gs://")


def test_invalid_credentials_never_printed(digits_model, s3_server, bucket):
    env = {**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-value-42"}
    completed = meshserve("upload", "--model", str(digits_model), "--to", f"s3://{bucket}/m", env=env)
    assert_one_line_error(completed, "credentials: access to")
    assert "wrong-secret-value-42" not in completed.stdout + completed.stderr
    assert s3_server.access_key not in completed.stdout + completed.stderr


@pytest.fixture
def taken_port():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


def test_the_inputs_issue_13_saw_crash_are_one_line_errors(tmp_path, isolated_state, taken_port, digits_model):
    """Issue 13: each of these ended in a traceback."""
    cases = [
        (("serve", str(digits_model), "--name", "d", "--http-port", "70000"), "http_port: 70000 is not a port"),
        (("serve", str(digits_model), "--name", "d", "--http-port", str(taken_port)),
         f"http_port: port {taken_port} is in use"),
        (("train", "--framework", "sklearn", "--dataset", "iris", "--seed", "-1", "--out", str(tmp_path / "m")),
         "seed: -1 is out of range"),
        (("train", "--framework", "sklearn", "--dataset", "iris", "--out", ""), "out: no model directory given"),
        (("bench", "http://127.0.0.1:9", "-n", "1", "--json", str(tmp_path)), "is a directory or empty"),
        (("deploy", "--name", "a" * 120, "--storage-uri", "pvc://m/x"),
         "is not a valid name; use lower-case letters, digits and '-', at most 63"),
    ]
    for args, pattern in cases:
        assert_one_line_error(meshserve(*args), pattern)
    status = meshserve("local", "status")
    assert status.stdout.strip() == "no model is deployed on the local platform"


def test_an_unexpected_failure_is_one_line_naming_its_log(isolated_state, monkeypatch, capsys):
    import pipelines.cli as cli

    def broken(args):
        raise RuntimeError("a bug, not the user's input")

    monkeypatch.setattr(cli, "_cmd_local_status", broken)
    assert cli.main(["local", "status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshserve local: unexpected error (RuntimeError); details in ")
    log = err.strip().rsplit(" ", 1)[1]
    assert log.startswith(str(isolated_state / "logs")) and "a bug, not the user's input" in open(log).read()


def test_a_manifest_that_is_a_json_array_is_a_one_line_error(tmp_path, isolated_state, digits_model):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(digits_model, model)
    (model / "meshserve-model.json").write_text("[1, 2]")
    assert_one_line_error(meshserve("upload", "--model", str(model), "--to", "pvc://models/x"),
                          "meshserve-model.json: holds a list, not a manifest object")
    assert_one_line_error(meshserve("gate", "--candidate", str(tmp_path / "none.json"), "--candidate-model",
                                    str(model)), "meshserve-model.json: holds a list, not a manifest object")


def test_a_traceback_log_is_scrubbed_and_private(monkeypatch, capsys, isolated_state):
    from components.redaction import register_secret
    from pipelines import cli

    register_secret("tok-9f8e7d6c5b4a")

    def broken(args):
        raise RuntimeError("the server echoed Authorization: Bearer tok-9f8e7d6c5b4a at https://u:pw1234@h/x?k=v")

    monkeypatch.setattr(cli, "_cmd_local_status", broken)
    assert cli.main(["local", "status"]) == 1
    log = capsys.readouterr().err.strip().rsplit(" ", 1)[1]
    text = open(log).read()
    assert "tok-9f8e7d6c5b4a" not in text and "pw1234" not in text and "RuntimeError" in text
    assert os.stat(log).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("user", [{"token": "abc\nX-Injected: yes"}, {"token": "abc\r\n"}])
def test_a_kubeconfig_token_that_would_inject_a_header_is_refused(tmp_path, user):
    import json

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    assert_one_line_error(meshserve("status", "--platform", "kubernetes", "--kubeconfig", str(kubeconfig)),
                          "kubeconfig: the user's token holds a newline or control character")
