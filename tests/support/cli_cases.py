"""Bad inputs, faults and secrets across every `meshserve` command, each judged as issue 13 counted them.

A case is a command line (with placeholders for files the workspace makes) and the exit code the
README documents for it. Its verdict is the first that applies:
- traceback: a Python traceback, or the "unexpected error" way out (a bug, not the user's input);
- secret: the workspace's secret marker appears in the output or in any file the command wrote;
- state left: a staging or partial file, or a model server or router started from the case's state;
- wrong exit: not the documented exit code;
- unclear: an error that is not one line naming the field (the case's `says`) and a fix;
- good.

`python -m tests.support.cli_cases` runs every case and prints the counts by command;
tests/test_cli_cases.py asserts each case is good.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SECRET = "hunter2-S3CR3T-7f3a"
VERDICTS = ("good", "unclear", "traceback", "wrong exit", "state left", "secret")
COMMANDS = ("train", "upload", "datasets", "run", "bench", "gate", "deploy", "promote", "rollback", "status", "local",
            "serve", "render", "compile", "submit")


@dataclass(frozen=True)
class Case:
    """One command line and what the README promises for it."""

    args: tuple[str, ...]
    exit: int = 2
    says: str = ""  # the field (or phrase) the one-line error must name
    env: dict = field(default_factory=dict)
    setup: str = ""  # a workspace preparation to run first (see Workspace.prepare)

    @property
    def command(self) -> str:
        """The sub-command (or "meshserve" for the program itself: no or an unknown sub-command)."""
        return self.args[0] if self.args and self.args[0] in COMMANDS else "meshserve"


def _c(*args: str, exit: int = 2, says: str = "", env: dict | None = None, setup: str = "") -> Case:
    return Case(tuple(args), exit, says, env or {}, setup)


_NO_CREDENTIALS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:{closed}", "AWS_ACCESS_KEY_ID": "",
                   "AWS_SECRET_ACCESS_KEY": ""}
_BAD_CREDENTIALS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:{closed}", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                    "AWS_SECRET_ACCESS_KEY": SECRET}
_K8S = ("--platform", "kubernetes")
_SPEC = ("--storage-uri", "s3://b/m/v1", "--model-format", "sklearn")  # a complete spec but for the field tested

CASES: list[Case] = [
    # the program itself
    _c(says="required: command"), _c("bogus", says="invalid choice"), _c("--bogus", says="required: command"),
    # train
    _c("train", "--framework", "sklearn", "--dataset", "cifar", "--out", "{tmp}/m", says="dataset:"),
    _c("train", "--framework", "torch", "--dataset", "iris", "--out", "{tmp}/m", says="framework:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--seed", "abc", "--out", "{tmp}/m", says="--seed"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--seed", "-1", "--out", "{tmp}/m", says="seed:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--out", "", says="out:"),
    _c("train", "--framework", "tensorflow", "--dataset", "iris", "--algorithm", "cnn", "--out", "{tmp}/m",
       says="algorithm:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--algorithm", "bogus", "--out", "{tmp}/m",
       says="algorithm:"),
    _c("train", "--framework", "tensorflow", "--dataset", "iris", "--epochs", "0", "--out", "{tmp}/m",
       says="epochs:"),
    _c("train", "--framework", "tensorflow", "--dataset", "iris", "--epochs", "-3", "--out", "{tmp}/m",
       says="epochs:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--train-limit", "-5", "--out", "{tmp}/m",
       says="train_limit:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--test-limit", "-5", "--out", "{tmp}/m",
       says="test_limit:"),
    _c("train", "--framework", "sklearn", "--dataset", "mnist", "--data-uri", "/nonexistent", "--out", "{tmp}/m",
       says="data_uri:"),
    _c("train", "--framework", "sklearn", "--dataset", "mnist", "--data-uri", "{emptydir}", "--out", "{tmp}/m",
       says="data_uri:"),
    _c("train", "--framework", "sklearn", "--dataset", "mnist", "--data-uri", "{junk}", "--out", "{tmp}/m",
       says="data_uri:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--out", "{junk}", says="out:"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--out", "/proc/meshserve/m", says="out:"),
    _c("train", "--framework", "sklearn", "--out", "{tmp}/m", says="--dataset"),
    _c("train", "--framework", "sklearn", "--dataset", "iris", "--epochs", "x", "--out", "{tmp}/m", says="--epochs"),
    # upload
    _c("upload", "--model", "/nonexistent", "--to", "pvc://models/x", says="model:"),
    _c("upload", "--model", "{emptydir}", "--to", "pvc://models/x", says="meshserve-model.json"),
    _c("upload", "--model", "{junk}", "--to", "pvc://models/x", says="model:"),
    _c("upload", "--model", "{model}", "--to", "ftp://host/models", says="to:"),
    _c("upload", "--model", "{model}", "--to", "", says="to:"),
    _c("upload", "--model", "{model}", "--to", "pvc://", says="to:"),
    _c("upload", "--model", "{model}", "--to", "s3://", says="to:"),
    _c("upload", "--model", "{model}", "--to", "pvc://models/x", "--version", "bad version!", says="version:"),
    _c("upload", "--model", "{array_model}", "--to", "pvc://models/x", says="manifest"),
    _c("upload", "--model", "{tampered_model}", "--to", "pvc://models/x", says="model:"),
    _c("upload", "--model", "{model}", "--to", "s3://models/x", env=_NO_CREDENTIALS, says="credentials:"),
    _c("upload", "--model", "{model}", "--to", "s3://models/x", env=_BAD_CREDENTIALS, says="endpoint:"),
    _c("upload", "--model", "{model}", "--to", "oss://models/x", env={"OSS_ENDPOINT": "http://127.0.0.1:{closed}"},
       says="endpoint:"),
    _c("upload", "--model", "{model}", says="--to"),
    # datasets
    _c("datasets", says="required: dataset_command"), _c("datasets", "fetch", says="required: name"),
    _c("datasets", "fetch", "cifar", says="invalid choice"),
    _c("datasets", "fetch", "mnist", "--cache", "{junk}", says="cache:"),
    _c("datasets", "fetch", "mnist", "--cache", "/proc/meshserve/mnist", says="cache:"),
    # bench (every load bounded: a closed port answers at once)
    _c("bench", "--json", "{tmp}/r.json", says="url"),
    _c("bench", "notaurl", "-n", "3", "--json", "{tmp}/r.json", says="url:"),
    _c("bench", "ftp://127.0.0.1/", "-n", "3", "--json", "{tmp}/r.json", says="url:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-qps", "0", "-n", "3", "--json", "{tmp}/r.json", says="qps:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-qps", "-5", "-n", "3", "--json", "{tmp}/r.json", says="qps:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-qps", "abc", "--json", "{tmp}/r.json", says="-qps"),
    _c("bench", "http://127.0.0.1:{closed}/", "-c", "0", "-n", "3", "--json", "{tmp}/r.json", says="concurrency:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-t", "abc", "--json", "{tmp}/r.json", says="t:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-t", "-1s", "--json", "{tmp}/r.json", says="t:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "0", "--json", "{tmp}/r.json", says="count:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--warmup", "xyz", "--json", "{tmp}/r.json",
       says="warmup:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "-timeout", "0", "--json", "{tmp}/r.json", says="timeout:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--protocol", "bogus", "--json", "{tmp}/r.json",
       says="protocol:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--protocol", "kserve-v1", "-payload", "{{}}", "--json",
       "{tmp}/r.json", says="model:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "-H", "nocolon", "--json", "{tmp}/r.json", says="H:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "-payload", "x", "-payload-file", "{junk}", "--json",
       "{tmp}/r.json", says="payload_file:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "-payload-file", "/nonexistent", "--json", "{tmp}/r.json",
       says="payload_file:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--protocol", "kserve-v1", "--model", "m", "--sample",
       "cifar", "--json", "{tmp}/r.json", says="sample:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--protocol", "v2-rest", "--model", "m", "--sample",
       "iris", "--datatype", "BOGUS", "--json", "{tmp}/r.json", says="datatype:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--procs", "0", "--json", "{tmp}/r.json", says="procs:"),
    _c("bench", "127.0.0.1:{closed}", "-n", "3", "--protocol", "v2-grpc", "--model", "m", "-payload", "x",
       "--grpc-channels", "0", "--json", "{tmp}/r.json", says="grpc_channels:"),
    _c("bench", "http://127.0.0.1:{closed}/", "--ramp-to", "10", "-t", "1s", "--json", "{tmp}/r.json",
       says="ramp_to_qps:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--json", "{emptydir}", says="json:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--json", "/proc/meshserve/r.json", says="json:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--json", "", says="json:"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--json", "{tmp}/r.json", "--html", "/proc/meshserve/r.html",
       says="html:"),
    _c("bench", f"http://user:{SECRET}@127.0.0.1:{{closed}}/", "-n", "3", "--json", "{tmp}/r.json", exit=0),
    _c("bench", "http://127.0.0.1:{closed}/", "-H", f"X-Custom-Token: {SECRET}", "-n", "3", "--json",
       "{tmp}/r.json", exit=0),
    _c("bench", f"http://127.0.0.1:{{closed}}/?token={SECRET}", "-n", "3", "--json", "{tmp}/r.json", exit=0),
    _c("bench", "http://127.0.0.1:{closed}/", "-H", f"Authorization: Bearer {SECRET}", "-n", "3", "--json",
       "{tmp}/r.json", "--html", "{tmp}/r.html", exit=0),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "-c", "x", "--json", "{tmp}/r.json", says="-c"),
    _c("bench", "http://127.0.0.1:{closed}/", "-n", "3", "--procs", "2", "--json", "{tmp}/r.json", exit=0),
    # gate (a result that cannot be used fails closed: ROLLBACK, exit 3)
    _c("gate", says="--candidate"),
    _c("gate", "--candidate", "/nonexistent", exit=3),
    _c("gate", "--candidate", "{junk}", exit=3),
    _c("gate", "--candidate", "{array}", exit=3),
    _c("gate", "--candidate", "{contradicting}", exit=3),
    _c("gate", "--candidate", "{result}", "--baseline", "/nonexistent", exit=3),
    _c("gate", "--candidate", "{result}", "--baseline", "{junk}", exit=3),
    _c("gate", "--candidate", "{result}", "--policy", "/nonexistent", says="policy:"),
    _c("gate", "--candidate", "{result}", "--policy", "{junk}", says="policy:"),
    _c("gate", "--candidate", "{result}", "--policy", "{array}", says="policy:"),
    _c("gate", "--candidate", "{result}", "--policy", "{unknown_key_policy}", says="policy.slo.max_p42_ms:"),
    _c("gate", "--candidate", "{result}", "--max-p99-ms", "-1", says="policy.slo.max_p99_ms:"),
    _c("gate", "--candidate", "{result}", "--max-p99-ms", "abc", says="--max-p99-ms"),
    _c("gate", "--candidate", "{result}", "--confidence", "1.5", says="confidence"),
    _c("gate", "--candidate", "{result}", "--min-samples", "5", says="policy.statistics"),
    _c("gate", "--candidate", "{result}", "--min-success-ratio", "2", says="min_success_ratio"),
    _c("gate", "--candidate", "{result}", "--on-inconclusive", "maybe", says="--on-inconclusive"),
    _c("gate", "--candidate", "{result}", "--json", "{emptydir}", says="json:"),
    _c("gate", "--candidate", "{result}", "--candidate-model", "/nonexistent", says="model:"),
    _c("gate", "--candidate", "{result}", "--max-p99-ms", "10000", "--min-samples", "100", exit=0),
    _c("gate", "--candidate", "{result}", "--max-p99-ms", "0.0001", "--min-samples", "100", exit=3),
    _c("gate", "--candidate", "{result}", "--baseline", "{result}", "--min-samples", "100", exit=0),
    # deploy (local unless said)
    _c("deploy", says="name:"),
    _c("deploy", "--name", "Bad_Name", "--storage-uri", "pvc://m/x", says="name:"),
    _c("deploy", "--name", "a" * 120, "--storage-uri", "pvc://m/x", says="name:"),
    _c("deploy", "--name", "m", says="storage_uri:"),
    _c("deploy", "--name", "m", "--storage-uri", "ftp://m/x", says="storage_uri:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://models/none/v000000000000", says="storage_uri:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--canary-percent", "150", says="canary_percent:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--canary-percent", "-1", says="canary_percent:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--replicas", "0", says="replicas:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--replicas", "17", says="replicas:"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--replicas", "abc", says="--replicas"),
    _c("deploy", "--name", "m", "--storage-uri", "pvc://m/x", "--runtime", "ovms", says="runtime:"),
    _c("deploy", "--platform", "nowhere", "--name", "m", says="platform:"),
    _c("deploy", *_K8S, "--kubeconfig", "/nonexistent", "--name", "m", *_SPEC,
       says="kubeconfig:"),
    _c("deploy", *_K8S, "--kubeconfig", "{junk}", "--name", "m", *_SPEC, says="kubeconfig:"),
    _c("deploy", *_K8S, "--replicas", "2", "--name", "m", *_SPEC, says="replicas:"),
    _c("deploy", *_K8S, "--spec", "/nonexistent", says="spec:"),
    _c("deploy", *_K8S, "--spec", "{junk}", says="spec:"),
    _c("deploy", *_K8S, "--spec", "{array}", says="spec:"),
    _c("deploy", *_K8S, "--ready-timeout", "-1", "--name", "m", *_SPEC,
       says="ready_timeout:"),
    _c("deploy", *_K8S, "--kubeconfig", "{kubeconfig}", "--name", "m", *_SPEC, "--version", "v1",
       says="cannot reach the API server"),
    _c("deploy", *_K8S, "--kubeconfig", "{kubeconfig}", "--context", "nope", "--name", "m", *_SPEC,
       says="context:"),
    # promote and rollback
    *[case for verb in ("promote", "rollback") for case in (
        _c(verb, says="--name"),
        _c(verb, "--name", "nope", says="name:"),
        _c(verb, "--name", "", says="name:"),
        _c(verb, "--name", "Bad_Name!", says="name:"),
        _c(verb, "--platform", "nowhere", "--name", "m", says="platform:"),
        _c(verb, *_K8S, "--kubeconfig", "/nonexistent", "--name", "m", says="kubeconfig:"),
        _c(verb, *_K8S, "--kubeconfig", "{kubeconfig}", "--name", "m", says="cannot reach the API server"),
        _c(verb, *_K8S, "--kubeconfig", "{kubeconfig}", "--name", "m", "--namespace", "Bad NS", says="namespace:"),
        _c(verb, "--name", "m", "--ready-timeout", "abc", says="--ready-timeout"),
    )],
    # status and local
    _c("status", exit=0), _c("status", "--json", exit=0),
    _c("status", "--platform", "nowhere", says="platform:"),
    _c("status", *_K8S, "--kubeconfig", "/nonexistent", says="kubeconfig:"),
    _c("status", *_K8S, "--kubeconfig", "{kubeconfig}", says="cannot reach the API server"),
    _c("status", *_K8S, "--kubeconfig", "{kubeconfig}", "--namespace", "Bad NS", says="namespace:"),
    _c("local", says="required: local_command"), _c("local", "bogus", says="invalid choice"),
    _c("local", "status", exit=0), _c("local", "down", exit=0), _c("local", "status", "--json", exit=0),
    _c("local", "status", says="state:", setup="corrupt_state"),
    _c("local", "down", exit=0, setup="corrupt_state"),
    _c("local", "mesh", says="routes:"),
    _c("local", "mesh", "--flavor", "bogus", says="flavor:"),
    _c("local", "mesh", "--rest-port", "abc", says="--rest-port"),
    # serve
    _c("serve", "/nonexistent", "--name", "d", says="model:"),
    _c("serve", "{emptydir}", "--name", "d", says="meshserve-model.json"),
    _c("serve", "{junk}", "--name", "d", says="model:"),
    _c("serve", "{model}", "--name", "d", "--http-port", "70000", says="http_port:"),
    _c("serve", "{model}", "--name", "d", "--http-port", "-1", says="http_port:"),
    _c("serve", "{model}", "--name", "d", "--http-port", "abc", says="--http-port"),
    _c("serve", "{model}", "--name", "d", "--http-port", "{taken}", says="http_port:"),
    _c("serve", "{model}", "--name", "d", "--grpc-port", "{taken}", says="grpc_port:"),
    _c("serve", "{model}", "--name", "", says="name:"),
    _c("serve", "{model}", "--name", "Bad Name", says="name:"),
    _c("serve", "{model}", "--name", "d", "--http-port", "{closed}", "--grpc-port", "{closed}", says="grpc_port:"),
    _c("serve", "{model}", says="--name"),
    # render
    _c("render", "--name", "m", "--model-format", "sklearn", says="storage_uri:"),
    _c("render", "--name", "m", *_SPEC, "--runtime", "bogus", says="runtime:"),
    _c("render", "--name", "m", *_SPEC, "--router", "bogus", says="router:"),
    _c("render", "--name", "m", *_SPEC, "--autoscaling", "bogus", says="autoscaling"),
    _c("render", "--name", "m", *_SPEC, "--runtime", "ovms",
       says="model_format:"),
    _c("render", "--name", "m", *_SPEC, "--runtime", "kserve-raw", "--autoscaling",
       "hpa-cpu", "--min-replicas", "3", "--max-replicas", "1", says="replicas"),
    _c("render", "--name", "m", *_SPEC, "--canary-percent", "10", says="canary_percent"),
    _c("render", "--name", "m", *_SPEC, "--cpu", "lots", says="cpu"),
    _c("render", "--spec", "/nonexistent", says="spec:"),
    _c("render", "--spec", "{junk}", says="spec:"),
    _c("render", "--spec", "{array}", says="spec:"),
    _c("render", "--spec", "{unknown_key_spec}", says="bogus_key"),
    _c("render", "--name", "m", *_SPEC, "--metric-selector", "novalue",
       says="metric_selector"),
    _c("render", "--name", "m", "--storage-uri", "ftp://b/m/v1", "--model-format", "sklearn", says="storage_uri:"),
    _c("render", "--name", "Bad_Name", *_SPEC, says="name:"),
    _c("render", "--name", "m", "--namespace", "Bad NS", *_SPEC, says="namespace:"),
    _c("render", "--name", "m", *_SPEC, "--min-replicas", "-2", says="min_replicas"),
    _c("render", "--name", "m", *_SPEC, "--canary-percent", "abc", says="--canary-percent"),
    _c("render", "--name", "m", *_SPEC, "--runtime", "kserve-raw", exit=0),
    _c("render", "--name", "m", *_SPEC, "--runtime", "tfserving", "--model-format",
       "tensorflow", "--router", "istio", says="storage_uri:"),
    # compile and submit
    _c("compile", "--out", "{junk}", says="out:"),
    _c("compile", "--out", "/proc/meshserve/out", says="out:"),
    _c("compile", "--out", "{tmp}/compiled", exit=0),
    _c("compile", "--out", "{tmp}/compiled", "--image", "bad image!", says="image:"),
    _c("submit", says="kfp"),
    _c("submit", "--kfp", "http://127.0.0.1:{closed}", says="cannot reach"),
    _c("submit", "--argo", "http://127.0.0.1:{closed}", says="cannot reach"),
    _c("submit", "--kfp", "http://127.0.0.1:{closed}", "--argo", "http://127.0.0.1:{closed}", says="argo"),
    _c("submit", "--kfp", "notaurl", says="kfp:"),
    _c("submit", "--argo", "http://127.0.0.1:{closed}", "-p", "novalue", says="-p"),
    _c("submit", "--argo", "http://127.0.0.1:{closed}", "-p", "bogus=1", says="bogus"),
    _c("submit", "--argo", "http://127.0.0.1:{closed}", "--token-file", "/nonexistent", says="token_file:"),
    _c("submit", "--argo", "http://127.0.0.1:{closed}", "--token-file", "{secret_file}",
       says="cannot reach"),
    # run
    _c("run", "--dataset", "cifar", says="dataset:"),
    _c("run", "--framework", "torch", says="framework:"),
    _c("run", "--to", "ftp://x/y", says="to:"),
    _c("run", "--name", "Bad_Name", says="name:"),
    _c("run", "--bogus", says="unrecognized arguments"),
    _c("run", "--to", "s3://models/x", env=_NO_CREDENTIALS, says="its upload step failed"),
]


class Workspace:
    """The files and ports the cases' placeholders name; one per run of the table."""

    def __init__(self, root: Path, model: Path, result: Path):
        self.root = root
        self.held = socket.socket()
        self.held.bind(("127.0.0.1", 0))
        self.held.listen()
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        self.values = {"model": str(model), "result": str(result), "taken": str(self.held.getsockname()[1]),
                       "closed": str(closed.getsockname()[1])}
        closed.close()
        self._make_files(model, result)

    def _make_files(self, model: Path, result: Path) -> None:
        import shutil

        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        (files / "empty").mkdir(exist_ok=True)
        (files / "junk.bin").write_bytes(b"\x00\xffnot json: {[")
        (files / "array.json").write_text("[1, 2, 3]")
        (files / "policy.yaml").write_text("slo:\n  max_p42_ms: 5\n")
        (files / "spec.yaml").write_text("name: m\nstorageUri: s3://b/m/v1\nbogus_key: 1\n")
        (files / "token").write_text(SECRET + "\n")
        contradicting = json.loads(result.read_text())
        contradicting["success_ratio"] = 0.5
        (files / "contradicting.json").write_text(json.dumps(contradicting))
        for name, change in (("array_model", "[1]"), ("tampered_model", None)):
            copy = files / name
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(model, copy)
            if change is not None:
                (copy / "meshserve-model.json").write_text(change)
            else:
                (copy / "model.joblib").write_bytes(b"not the model the manifest lists")
        (files / "kubeconfig").write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{self.values['closed']}",
                                                   "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": SECRET}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
        self.values.update({"emptydir": str(files / "empty"), "junk": str(files / "junk.bin"),
                            "array": str(files / "array.json"), "unknown_key_policy": str(files / "policy.yaml"),
                            "unknown_key_spec": str(files / "spec.yaml"), "secret_file": str(files / "token"),
                            "contradicting": str(files / "contradicting.json"),
                            "array_model": str(files / "array_model"), "tampered_model": str(files / "tampered_model"),
                            "kubeconfig": str(files / "kubeconfig")})

    def close(self) -> None:
        """Release the held port."""
        self.held.close()

    def expand(self, text: str, tmp: Path) -> str:
        """The text with its {placeholders} filled in ({{}} stands for {})."""
        for key, value in {**self.values, "tmp": str(tmp)}.items():
            text = text.replace("{" + key + "}", value)
        return text.replace("{{}}", "{}")

    def prepare(self, setup: str, state: Path) -> None:
        """Put the case's precondition in place."""
        if setup == "corrupt_state":
            state.mkdir(parents=True, exist_ok=True)
            (state / "platform.json").write_text("{not json")


@dataclass
class Outcome:
    """What one case did."""

    case: Case
    code: int
    out: str
    err: str
    leftovers: list[str]
    secret_in: list[str]

    @property
    def verdict(self) -> str:
        """The first verdict that applies (see the module docstring)."""
        text = self.out + self.err
        if "Traceback" in text or "unexpected error" in self.err:
            return "traceback"
        if self.secret_in:
            return "secret"
        if self.leftovers:
            return "state left"
        if self.code != self.case.exit:
            return "wrong exit"
        if self.code in (1, 2) and not self._clear():
            return "unclear"
        return "good"

    def _clear(self) -> bool:
        lines = self.err.strip().splitlines()
        prefix = "meshserve" if self.case.command == "meshserve" else f"meshserve {self.case.command}"
        return len(lines) == 1 and lines[0].startswith(prefix) and self.case.says in lines[0] and "; " in lines[0]


def run_case(case: Case, workspace: Workspace, tmp: Path) -> Outcome:
    """Run one case in this process, as `meshserve ...`, in its own state directory."""
    from pipelines.cli import main

    tmp.mkdir(parents=True, exist_ok=True)
    state = tmp / "state"
    workspace.prepare(case.setup, state)
    env = {"MESHSERVE_STATE_DIR": str(state), **{k: workspace.expand(v, tmp) for k, v in case.env.items()}}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([workspace.expand(arg, tmp) for arg in case.args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Outcome(case, code, out.getvalue(), err.getvalue(), leftovers(state, tmp), secret_holders(tmp, out, err))


def leftovers(state: Path, tmp: Path) -> list[str]:
    """Staging and partial files under the case's directory, and processes started from its state."""
    found = [str(p) for p in tmp.rglob("*") if p.name == ".staging" and any(p.iterdir())
             or p.name.endswith(".partial")]
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and str(state).encode() in cmdline and entry.name != str(os.getpid()):
            found.append(f"process {entry.name}")
    return found


def secret_holders(tmp: Path, out: io.StringIO, err: io.StringIO) -> list[str]:
    """Where the secret marker appears: the output, or any file the case wrote."""
    holders = [name for name, stream in (("stdout", out), ("stderr", err)) if SECRET in stream.getvalue()]
    for path in tmp.rglob("*"):
        if path.is_file() and path.stat().st_size < 50 << 20 and SECRET.encode() in path.read_bytes():
            holders.append(str(path))
    return holders


def table(outcomes: list, label: str = "command", key=lambda outcome: outcome.case.command,
          verdicts: tuple[str, ...] = VERDICTS) -> str:
    """Verdict counts by command (or by whatever `key` picks from an outcome), as a Markdown table."""
    rows: dict[str, Counter] = {}
    for outcome in outcomes:
        rows.setdefault(key(outcome), Counter())[outcome.verdict] += 1
    lines = [f"| {label} | cases | " + " | ".join(verdicts) + " |", "|---" * (len(verdicts) + 2) + "|"]
    total: Counter = Counter()
    for name, counted in rows.items():
        total.update(counted)
        lines.append(f"| {name} | {sum(counted.values())} | " + " | ".join(str(counted[v]) for v in verdicts) + " |")
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[v]) for v in verdicts) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run every case (training the model and making the result they use) and print the table."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    with tempfile.TemporaryDirectory() as work:
        workspace = Workspace(Path(work), *prepared_inputs(Path(work)))
        outcomes = [run_case(case, workspace, Path(work) / f"case-{i:03d}") for i, case in enumerate(CASES)]
        workspace.close()
    for outcome in outcomes:
        if outcome.verdict != "good":
            print(f"{outcome.verdict}: {' '.join(outcome.case.args)[:100]} -> exit {outcome.code}: "
                  f"{(outcome.err.strip().splitlines() or [''])[-1][:200]}")
    print(table(outcomes))


def prepared_inputs(root: Path) -> tuple[Path, Path]:
    """A trained digits model and a real benchmark result of 1,200 requests (against the test server)."""
    from components.benchmark.result import write_result
    from components.steps.benchmark.core import run_benchmark_step
    from components.training import TrainConfig, train_model
    from tests.support.servers import start_inference_server

    model = train_model(TrainConfig(framework="sklearn", dataset="digits"), root / "model").model_dir
    server = start_inference_server()
    try:
        document = run_benchmark_step(server.http_url, count=1200, concurrency=4)
    finally:
        server.stop()
    write_result(document, root / "result.json")
    return model, root / "result.json"


if __name__ == "__main__":
    main()
