"""Issue 18's classes, tried as an attacker and as a careless user would: data loss, security holes, forged
evidence, secrets out, hangs and wrong answers to bad input, across the commands, each judged.

A case is an issue-13 case (tests/support/cli_cases.py: the command line, the documented exit code, the
field its one-line error names) with its class, and the paths it must leave exactly as they were. The
verdict is the first that applies:
- hang: no exit within HANG_SECONDS (every network call is bounded by MESHSERVE_REQUEST_TIMEOUT_S=1 here);
- traceback, secret, state left, wrong exit, unclear: as cli_cases judges them, the secret looked for in the
  output, every file the case wrote (its traceback logs among them);
- data loss: a path the case must keep changed or vanished;
- good.

Hostile servers (tests/support/hostile_server.py) stand in for KFP, Argo, the Kubernetes API and S3: one
that never answers, one that echoes the request headers in a 500, a login page, `{}`, a truncated answer and a
redirect to another origin. Each case forgets the secrets the earlier ones registered, so a secret is scrubbed
only when this case's own code path registered it.

`python -m tests.support.trust_cases` prints the table by class and by command; tests/test_trust_cases.py
asserts every case is good.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cli_cases import SECRET, Case, Outcome, Workspace, run_case, table
from tests.support.hostile_server import BEHAVIOURS, HostileServers

HANG_SECONDS = 25
CLASSES = ("data loss", "security", "forged evidence", "secret out", "hang", "wrong answer")
VERDICTS = ("good", "unclear", "traceback", "wrong exit", "state left", "secret", "data loss", "hang")
SERVERS = (*BEHAVIOURS, "taken")  # "taken": accepts the connection, never answers


@dataclass(frozen=True)
class TrustCase(Case):
    """A case with its class, what it must keep, and (for a secret) the input channel it is planted in."""

    kind: str = ""
    keeps: tuple[str, ...] = ()
    channel: str = ""

    @property
    def command(self) -> str:
        """The sub-command, whatever it is (analyze and noise included)."""
        return self.args[0] if self.args else "meshserve"


def _t(kind: str, *args: str, exit: int = 2, says: str = "", env: dict | None = None, setup: str = "",
       keeps: tuple[str, ...] = (), channel: str = "") -> TrustCase:
    return TrustCase(tuple(args), exit, says, env or {}, setup, kind, keeps, channel)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


_K8S = ("--platform", "kubernetes")
_SPEC = ("--storage-uri", "s3://b/m/v1", "--model-format", "sklearn")
_GOOD_POLICY = ("--max-p99-ms", "10000", "--min-samples", "100")
_PVC = {"MESHSERVE_PVC_ROOT": "{tmp}/pvc"}


def _data_loss() -> list[TrustCase]:
    keep_version = ("{tmp}/pvc/models/shared/important",)
    return [
        _t("data loss", "upload", "--model", "{model}", "--to", "pvc://models/shared", "--version", "important",
           env=_PVC, setup="user_files_at_version", keeps=keep_version, says="version:"),
        _t("data loss", "upload", "--model", "{model}", "--to", "pvc://models/shared", "--version", "README",
           env=_PVC, setup="plain_file_at_version", keeps=("{tmp}/pvc/models/shared/README",), says="version:"),
        _t("data loss", "upload", "--model", "{model}", "--to", "pvc://models/shared", "--version", "important",
           env=_PVC, setup="user_files_and_our_marker_elsewhere", keeps=keep_version, says="version:"),
        _t("data loss", "train", "--framework", "sklearn", "--dataset", "iris", "--out", "{tmp}/out",
           setup="user_out_dir", keeps=("{tmp}/out",), says="out:"),
        _t("data loss", "train", "--framework", "sklearn", "--dataset", "iris", "--out", "{tmp}/out",
           setup="user_partial_beside_out", keeps=("{tmp}/out.partial",), exit=0),
        _t("data loss", "datasets", "fetch", "mnist", "--cache", "{tmp}/cache", setup="user_cache_dir",
           keeps=("{tmp}/cache",), says="cache:"),
        _t("data loss", "gate", "--candidate", "{tmp}/candidate.json", "--json", "{tmp}/candidate.json",
           *_GOOD_POLICY, setup="candidate_copy", keeps=("{tmp}/candidate.json",), says="json:"),
        _t("data loss", "gate", "--candidate", "{result}", "--baseline", "{tmp}/candidate.json", "--html",
           "{tmp}/candidate.json", *_GOOD_POLICY, setup="candidate_copy", keeps=("{tmp}/candidate.json",),
           says="html:"),
        _t("data loss", "gate", "--candidate", "{result}", "--policy", "{tmp}/policy.yaml", "--markdown",
           "{tmp}/policy.yaml", setup="policy_copy", keeps=("{tmp}/policy.yaml",), says="markdown:"),
        _t("data loss", "gate", "--candidate", "{result}", "--json", "{tmp}/verdict.json", "--html",
           "{tmp}/verdict.json", *_GOOD_POLICY, says="html:"),
        _t("data loss", "bench", "http://127.0.0.1:{closed}/", "-n", "3", "-payload-file", "{tmp}/payload.json",
           "--json", "{tmp}/payload.json", setup="payload_copy", keeps=("{tmp}/payload.json",), says="json:"),
        _t("data loss", "bench", "http://127.0.0.1:{closed}/", "-n", "3", "--json", "{tmp}/r.json", "--html",
           "{tmp}/r.json", says="html:"),
        _t("data loss", "compile", "--out", "{tmp}/compiled", setup="user_file_in_compile_dir",
           keeps=("{tmp}/compiled/notes.txt",), exit=0),
        _t("data loss", "compile", "--out", "{tmp}/compiled", setup="directory_where_compile_writes",
           keeps=("{tmp}/compiled/train_to_serve.kfp.yaml",), says="out:"),
        _t("data loss", "noise", "--name", "m", "--policy", "{tmp}/policy.yaml", "--policy-out", "{tmp}/policy.yaml",
           setup="policy_copy", keeps=("{tmp}/policy.yaml",), says="policy_out:"),
        _t("data loss", "local", "down", setup="corrupt_state_with_user_file", keeps=("{tmp}/state/notes.txt",),
           exit=0),
    ]


def _security() -> list[TrustCase]:
    newline = "m\n"
    cases = [
        _t("security", "render", "--name", newline, *_SPEC, says="name:"),
        _t("security", "render", "--name", "m", "--namespace", "ns\n", *_SPEC, says="namespace:"),
        _t("security", "render", "--name", "m", "--version", "v1\n", *_SPEC, says="version:"),
        _t("security", "render", "--name", "m", *_SPEC, "--toleration", "gpu=yes:NoSchedule\n", says="toleration"),
        _t("security", "render", "--name", "m", *_SPEC, "--runtime", "kserve-raw", "--autoscaling", "hpa-qps",
           "--metric-selector", "app=m\n", says="selector"),
        _t("security", "render", "--name", "m", *_SPEC, "--node-selector", "pool=gpu\n", says="node_selector"),
        _t("security", "render", "--name", "m", *_SPEC, "--service-account", "sa\n", says="service_account"),
        _t("security", "render", "--name", "m", *_SPEC, "--storage-secret", "creds\n", says="secret"),
        _t("security", "render", "--name", "m", "--storage-uri", "s3://b/m/v1\n", "--model-format", "sklearn",
           says="storage_uri:"),
        _t("security", "deploy", "--name", newline, "--storage-uri", "pvc://models/x/v1", says="name:"),
        _t("security", "deploy", *_K8S, "--kubeconfig", "{kc_closed}", "--name", "m", *_SPEC, "--version", "v1",
           "--namespace", "ns\n", says="namespace:"),
        _t("security", "promote", "--name", newline, says="name:"),
        _t("security", "rollback", "--name", newline, says="name:"),
        _t("security", "status", *_K8S, "--kubeconfig", "{kc_closed}", "--namespace", "default\n",
           says="namespace:"),
        _t("security", "upload", "--model", "{model}", "--to", "pvc://models/x", "--version", "v1\n", env=_PVC,
           says="version:"),
        _t("security", "upload", "--model", "{model}", "--to", "pvc://models/x", "--version", "../escape",
           env=_PVC, says="version:"),
        _t("security", "upload", "--model", "{model}", "--to", "pvc://models/../../etc", env=_PVC, says="to:"),
        _t("security", "compile", "--out", "{tmp}/c", "--image", "img:1\n", says="image:"),
        _t("security", "submit", "--argo", "http://127.0.0.1:{empty}", "--namespace", "kubeflow\n",
           says="namespace:"),
        _t("security", "submit", "--argo", "http://127.0.0.1:{empty}", "--namespace", "../../api",
           says="namespace:"),
        _t("security", "submit", "--kfp", "http://127.0.0.1:{empty}", env={"KFP_TOKEN": "abc\nX-Injected: yes"},
           says="KFP_TOKEN:"),
        _t("security", "submit", "--argo", "http://127.0.0.1:{empty}", env={"ARGO_TOKEN": "abc\r\nX-Injected: yes"},
           says="ARGO_TOKEN:"),
        _t("security", "submit", "--kfp", "http://127.0.0.1:{empty}", "--token-file", "{injecting_token}",
           says="token_file:"),
        _t("security", "status", *_K8S, "--kubeconfig", "{kc_injecting}", says="kubeconfig"),
        _t("security", "promote", *_K8S, "--kubeconfig", "{kc_injecting}", "--name", "m", says="kubeconfig"),
        _t("security", "bench", "http://127.0.0.1:{closed}/", "-n", "3", "-H", "X-A: 1\r\nX-Injected: yes",
           "--json", "{tmp}/r.json", says="H:"),
        _t("security", "bench", "http://127.0.0.1:{closed}/", "-n", "3", "-H", "X Bad Name: 1", "--json",
           "{tmp}/r.json", says="H:"),
    ]
    for model, says in (("symlink_out_model", "model:"), ("dotdot_model", "meshserve-model.json:"),
                        ("absolute_model", "meshserve-model.json:")):
        cases += [_t("security", "upload", "--model", "{" + model + "}", "--to", "pvc://models/x", env=_PVC,
                     says=says),
                  _t("security", "serve", "{" + model + "}", "--name", "d", says=says),
                  _t("security", "gate", "--candidate", "{result}", "--candidate-model", "{" + model + "}",
                     *_GOOD_POLICY, says=says)]
    return cases


FORGERIES: dict[str, object] = {
    # name -> (dotted path, value) or a text transformation, applied to the real result
    "requested_qps null": [("settings.mode", "open-loop"), ("settings.qps", 100.0), ("requested_qps", None)],
    "requested_qps 0": ("requested_qps", 0),
    "requested_qps negative": ("requested_qps", -5), "requested_qps -1e999": ("requested_qps", "-1e999"),
    "requested_qps string": ("requested_qps", "100"), "measured_seconds 0": ("measured_seconds", 0),
    "measured_seconds NaN": ("measured_seconds", "NaN"), "measured_seconds negative": ("measured_seconds", -3),
    "achieved_qps NaN": ("achieved_qps", "NaN"), "achieved_qps Infinity": ("achieved_qps", "Infinity"),
    "achieved_qps above physics": ("achieved_qps", 1e12), "p99 NaN": ("latency_ms.p99", "NaN"),
    "p50 NaN": ("latency_ms.p50", "NaN"), "mean NaN": ("latency_ms.mean", "NaN"),
    "p99 negative": ("latency_ms.p99", -1), "p99 Infinity": ("latency_ms.p99", "Infinity"),
    "p50 above p99": ("latency_ms.p50", 1e6), "max below min": ("latency_ms.max", 0.0),
    "started after ended": ("started_at", "2999-01-01T00:00:00+00:00"),
    "started yesterday": ("started_at", "YESTERDAY"), "ended in the future": ("ended_at", "2999-01-01T00:00:00+00:00"),
    "started_at not a time": ("started_at", "soon"), "success_ratio above 1": ("success_ratio", 1.5),
    "success_ratio NaN": ("success_ratio", "NaN"), "success_ratio boolean": ("success_ratio", True),
    "success above total": ("counts.success", 10 ** 9), "total 0": ("counts.total", 0),
    "total boolean": ("counts.total", True), "sent below total": ("sent", 1),
    "2^40 requests claimed": ("counts.total", 2 ** 40), "histogram garbage": ("histogram.data", "AAAA"),
    "histogram of another run": ("histogram.data", "OTHER_HISTOGRAM"), "no latency": ("latency_ms", "DROP"),
    "no counts": ("counts", "DROP"), "no histogram": ("histogram", "DROP"), "no schema": ("schema", "DROP"),
    "another schema": ("schema", "meshserve.benchmark-result/v0"), "extra field": ("verdict", "PROMOTE"),
    "duplicate success_ratio": "DUPLICATE", "truncated": "TRUNCATE", "empty object": "EMPTY",
    "sample NaN": ("samples_us", "NAN_SAMPLE"),
}


def _forged_evidence() -> list[TrustCase]:
    cases = [_t("forged evidence", "gate", "--candidate", "{forged_" + _slug(name) + "}", *_GOOD_POLICY, exit=3)
             for name in FORGERIES]
    cases += [_t("forged evidence", "gate", "--candidate", "{result}", "--baseline", "{forged_" + _slug(name) + "}",
                 "--min-samples", "100", exit=3)
              for name in ("p99 NaN", "duplicate success_ratio", "started after ended", "2^40 requests claimed")]
    for flag in ("--max-p99-ms", "--max-p50-ms", "--confidence", "--min-success-ratio"):
        cases += [_t("forged evidence", "gate", "--candidate", "{result}", flag, value,
                     says=flag.lstrip("-").replace("-", "_")) for value in ("nan", "inf")]
    for policy in ("noise_nan", "slo_inf", "confidence_bool", "duplicate_keys"):
        cases.append(_t("forged evidence", "gate", "--candidate", "{result}", "--policy", "{policy_" + policy + "}",
                        says="policy"))
    return cases


def _secrets_out() -> list[TrustCase]:
    closed = "http://127.0.0.1:{closed}/"
    cases = [
        _t("secret out", "bench", f"http://user:{SECRET}@127.0.0.1:{{closed}}/", "-n", "3", "--json", "{tmp}/r.json",
           "--html", "{tmp}/r.html", exit=0, channel="URL user info"),
        _t("secret out", "bench", f"{closed}?token={SECRET}", "-n", "3", "--json", "{tmp}/r.json", "--html",
           "{tmp}/r.html", exit=0, channel="URL query value"),
        _t("secret out", "bench", f"{closed}?{SECRET}", "-n", "3", "--json", "{tmp}/r.json", exit=0,
           channel="URL bare query key"),
        _t("secret out", "bench", f"{closed}v1;jsessionid={SECRET}/models", "-n", "3", "--json", "{tmp}/r.json",
           exit=0, channel="URL path parameter"),
        _t("secret out", "bench", f"user:{SECRET}@127.0.0.1:{{closed}}", "--protocol", "v2-grpc", "--model", "m",
           "--sample", "iris", "-n", "3", "--json", "{tmp}/r.json", exit=0, channel="gRPC target user info"),
        *[_t("secret out", "bench", closed, "-H", header, "-n", "3", "--json", "{tmp}/r.json", "--html",
             "{tmp}/r.html", exit=0, channel="header")
          for header in (f"Authorization: Bearer {SECRET}", f"Cookie: session={SECRET}", f"X-Api-Key: {SECRET}",
                         f"X-Custom: {SECRET}")],
        _t("secret out", "gate", "--candidate", "{forged_secret_url}", *_GOOD_POLICY, "--json", "{tmp}/v.json",
           "--html", "{tmp}/v.html", "--markdown", "{tmp}/v.md", exit=0, channel="evidence URL"),
        _t("secret out", "upload", "--model", "{model}", "--to", "s3://models/x",
           env={"AWS_ENDPOINT_URL": f"http://u:{SECRET}@127.0.0.1:{{closed}}", "AWS_ACCESS_KEY_ID": "AKID",
                "AWS_SECRET_ACCESS_KEY": "abcdefgh"}, says="AWS_ENDPOINT_URL:", channel="storage endpoint user info"),
        _t("secret out", "upload", "--model", "{model}", "--to", "oss://models/x",
           env={"OSS_ENDPOINT": f"http://127.0.0.1:{{closed}}/?sig={SECRET}", "OSS_ACCESS_KEY_ID": "AKID",
                "OSS_ACCESS_KEY_SECRET": "abcdefgh"}, says="endpoint:", channel="storage endpoint query"),
        _t("secret out", "submit", "--kfp", f"http://u:{SECRET}@127.0.0.1:{{closed}}", says="cannot reach",
           channel="URL user info"),
        _t("secret out", "submit", "--argo", f"http://127.0.0.1:{{closed}}/?access_token={SECRET}", says="Argo server",
           channel="URL query value"),
        _t("secret out", "status", *_K8S, "--kubeconfig", "{kc_userinfo}", says="cannot reach",
           channel="kubeconfig server user info"),
        _t("secret out", "status", *_K8S, "--kubeconfig", "{kc_query}", says="cannot reach",
           channel="kubeconfig server query"),
        _t("secret out", "status", *_K8S, "--kubeconfig", "{kc_keydata}", says="kubeconfig",
           channel="kubeconfig client-key-data"),
        _t("secret out", "status", *_K8S, "--kubeconfig", "{kc_basic_echo500}", says="API server",
           channel="kubeconfig password"),
    ]
    for server in SERVERS:
        says = "cannot reach" if server == "taken" else ""
        cases += [
            _t("secret out", "submit", "--kfp", f"http://127.0.0.1:{{{server}}}", env={"KFP_TOKEN": SECRET},
               says=says or "KFP", channel="token environment variable"),
            _t("secret out", "submit", "--argo", f"http://127.0.0.1:{{{server}}}", "--token-file", "{secret_file}",
               says=says or "Argo", channel="token file"),
            _t("secret out", "status", *_K8S, "--kubeconfig", "{kc_" + server + "}", says=says or "API server",
               channel="kubeconfig token"),
        ]
    cases += [_t("secret out", verb, *_K8S, "--kubeconfig", "{kc_echo500}", "--name", "m", says="API server",
                 channel="kubeconfig token") for verb in ("promote", "rollback")]
    cases.append(_t("secret out", "analyze", *_K8S, "--kubeconfig", "{kc_echo500}", "--name", "m", "--json",
                    "{tmp}/a.json", says="API server", channel="kubeconfig token"))
    cases.append(_t("secret out", "deploy", *_K8S, "--kubeconfig", "{kc_echo500}", "--name", "m", *_SPEC,
                    "--version", "v1", says="API server", channel="kubeconfig token"))
    cases.append(_t("secret out", "upload", "--model", "{model}", "--to", "s3://models/x",
                    env={"AWS_ENDPOINT_URL": "http://127.0.0.1:{echo500}", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                         "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": SECRET}, says="to:",
                    channel="storage credentials"))
    return cases


def _hangs() -> list[TrustCase]:
    taken = "http://127.0.0.1:{taken}"
    cases = [
        _t("hang", "submit", "--kfp", taken, says="cannot reach"),
        _t("hang", "submit", "--argo", taken, says="cannot reach"),
        *[_t("hang", verb, *_K8S, "--kubeconfig", "{kc_taken}", "--name", "m", says="cannot reach")
          for verb in ("promote", "rollback")],
        _t("hang", "deploy", *_K8S, "--kubeconfig", "{kc_taken}", "--name", "m", *_SPEC, "--version", "v1",
           says="cannot reach"),
        _t("hang", "upload", "--model", "{model}", "--to", "s3://models/x",
           env={"AWS_ENDPOINT_URL": taken, "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "abcdefgh"},
           says="endpoint:"),
        _t("hang", "bench", taken + "/", "-n", "3", "-timeout", "1s", "--json", "{tmp}/r.json", exit=0),
        _t("hang", "deploy", *_K8S, "--kubeconfig", "{kc_closed}", "--name", "m", *_SPEC, "--ready-timeout", "inf",
           says="ready_timeout:"),
        _t("hang", "deploy", *_K8S, "--kubeconfig", "{kc_closed}", "--name", "m", *_SPEC, "--ready-timeout", "1e12",
           says="ready_timeout:"),
        _t("hang", "gate", "--candidate", "{forged_2_40_requests_claimed}", *_GOOD_POLICY, exit=3),
        _t("hang", "gate", "--candidate", "{result}", "--policy", "{policy_bootstrap_3e6}", says="bootstrap"),
        _t("hang", "gate", "--candidate", "{result}", "--policy", "{policy_bootstrap_1e8}", says="bootstrap"),
    ]
    for source in ("dev_zero", "fifo", "huge"):
        cases += [
            _t("hang", "gate", "--candidate", "{" + source + "}", *_GOOD_POLICY, exit=3),
            _t("hang", "gate", "--candidate", "{result}", "--baseline", "{" + source + "}", *_GOOD_POLICY, exit=3),
            _t("hang", "gate", "--candidate", "{result}", "--policy", "{" + source + "}", says="policy:"),
            _t("hang", "render", "--spec", "{" + source + "}", says="spec:"),
            _t("hang", "bench", "http://127.0.0.1:{closed}/", "-n", "3", "-payload-file", "{" + source + "}",
               "--json", "{tmp}/r.json", says="payload_file:"),
            _t("hang", "submit", "--kfp", "http://127.0.0.1:{empty}", "--token-file", "{" + source + "}",
               says="token_file:"),
        ]
    cases += [_t("hang", "render", "--spec", "{alias_bomb}", says="spec:"),
              _t("hang", "gate", "--candidate", "{result}", "--policy", "{alias_bomb}", says="policy:"),
              _t("hang", "render", "--spec", "{deep_nesting}", says="spec:")]
    return cases


def _wrong_answers() -> list[TrustCase]:
    cases = [_t("wrong answer", "render", "--spec", "{spec_" + name + "}", says=says) for name, says in (
        ("canary_bool", "canary_percent"), ("gpus_bool", "gpus"), ("tolerations_string", "tolerations"),
        ("resources_list", "resources"), ("name_number", "name"), ("two_documents", "spec:"),
        ("null_document", "spec:"), ("replicas_float", "min_replicas"), ("storage_list", "storage_uri"),
        ("selector_list", "selector"), ("node_selector_number", "node_selector"), ("runtime_options_list",
                                                                                    "runtime_options"))]
    for server in ("html", "empty", "truncated", "redirect"):
        cases += [_t("wrong answer", "submit", "--kfp", f"http://127.0.0.1:{{{server}}}", says="KFP"),
                  _t("wrong answer", "submit", "--argo", f"http://127.0.0.1:{{{server}}}", says="Argo")]
        cases += [_t("wrong answer", verb, *_K8S, "--kubeconfig", "{kc_" + server + "}", "--name", "m",
                     says="API server") for verb in ("promote", "rollback")]
        cases.append(_t("wrong answer", "deploy", *_K8S, "--kubeconfig", "{kc_" + server + "}", "--name", "m",
                        *_SPEC, "--version", "v1", says="API server"))
    return cases


CASES: list[TrustCase] = [*_data_loss(), *_security(), *_forged_evidence(), *_secrets_out(), *_hangs(),
                          *_wrong_answers()]


class TrustWorkspace(Workspace):
    """The issue-13 workspace plus the hostile servers, kubeconfigs, forged results, hostile files and the
    preconditions the trust cases name."""

    def __init__(self, root: Path, model: Path, result: Path):
        self.servers = HostileServers()
        super().__init__(root, model, result)
        files = root / "trust"
        files.mkdir(exist_ok=True)
        self.values.update({name: str(port) for name, port in self.servers.ports.items()})
        self._kubeconfigs(files)
        self._forgeries(files, json.loads(result.read_text()))
        self._hostile_files(files)
        self._models(files, model)
        self._documents(files)

    def close(self) -> None:
        """Stop the servers, release the held port."""
        self.servers.close()
        super().close()

    def _kubeconfigs(self, files: Path) -> None:
        token = {"token": SECRET}
        key = base64.b64encode(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n".encode())
        cert = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        closed = f"http://127.0.0.1:{self.values['closed']}"
        configs = {f"kc_{server}": (f"http://127.0.0.1:{self.values[server]}", token) for server in SERVERS}
        configs.update({
            "kc_closed": (closed, token), "kc_userinfo": (f"http://admin:{SECRET}@127.0.0.1:{self.values['closed']}",
                                                           {}),
            "kc_query": (f"{closed}/?access_token={SECRET}", {}),
            "kc_keydata": (closed, {"client-key-data": key.decode(), "client-certificate-data": cert.decode()}),
            "kc_basic_echo500": (f"http://127.0.0.1:{self.values['echo500']}", {"username": "admin",
                                                                                 "password": SECRET}),
            "kc_injecting": (closed, {"token": "abc\nX-Injected: yes"}),
        })
        for name, (server, user) in configs.items():
            (files / f"{name}.yaml").write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "c",
                "clusters": [{"name": "k", "cluster": {"server": server}}], "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "default"}}]}))
            self.values[name] = str(files / f"{name}.yaml")

    def _forgeries(self, files: Path, real: dict) -> None:
        from tests.support.results import result_document

        other = result_document([5.0, 6.0] * 50)["histogram"]["data"]
        for name, forgery in {**FORGERIES, "secret url": ("target.url", f"http://u:{SECRET}@h/?k={SECRET}")}.items():
            path = files / f"forged-{_slug(name)}.json"
            path.write_text(_forged_text(real, forgery, other))
            self.values[f"forged_{_slug(name)}"] = str(path)

    def _hostile_files(self, files: Path) -> None:
        fifo = files / "fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        huge = files / "huge.yaml"
        with open(huge, "wb") as handle:  # sparse: 190 MB on paper, nothing on disk
            handle.truncate(190 << 20)
        (files / "alias_bomb.yaml").write_text("a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(9)))
        (files / "deep.yaml").write_text("[" * 100_000 + "]" * 100_000)
        (files / "injecting_token").write_text("abc\nX-Injected: yes\n")
        self.values.update({"dev_zero": "/dev/zero", "fifo": str(fifo), "huge": str(huge),
                            "alias_bomb": str(files / "alias_bomb.yaml"), "deep_nesting": str(files / "deep.yaml"),
                            "injecting_token": str(files / "injecting_token")})

    def _models(self, files: Path, model: Path) -> None:
        import shutil

        from components.manifest import MANIFEST_FILENAME
        from components.manifest.model_manifest import digest_of_files, sha256_file

        for name, entry in (("symlink_out_model", "extra.txt"), ("dotdot_model", "../outside.txt"),
                            ("absolute_model", "/etc/passwd")):
            copy = files / name
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(model, copy)
            if name == "symlink_out_model":
                (copy / "extra.txt").symlink_to("/etc/passwd")
            manifest = json.loads((copy / MANIFEST_FILENAME).read_text())
            manifest["files"][entry] = sha256_file(Path("/etc/passwd"))
            manifest["model_digest"] = digest_of_files(manifest["files"])  # a forger recomputes the digest
            (copy / MANIFEST_FILENAME).write_text(json.dumps(manifest))
            self.values[name] = str(copy)

    def _documents(self, files: Path) -> None:
        spec = "name: m\nstorage_uri: s3://b/m/v1\nmodel_format: sklearn\n"
        specs = {"canary_bool": spec + "canary_percent: true\n", "gpus_bool": spec + "resources: {gpus: true}\n",
                 "tolerations_string": spec + "placement: {tolerations: gpu}\n", "resources_list": spec
                 + "resources: [1]\n", "name_number": spec.replace("name: m", "name: 5"),
                 "two_documents": spec + "---\n" + spec, "null_document": "~\n",
                 "replicas_float": spec + "runtime: kserve-raw\nautoscaling: {kind: hpa-cpu, min_replicas: 1.5}\n",
                 "storage_list": spec.replace("storage_uri: s3://b/m/v1", "storage_uri: [s3://b/m/v1]"),
                 "selector_list": spec + "runtime: kserve-raw\nautoscaling: {kind: hpa-qps, selector: [a]}\n",
                 "node_selector_number": spec + "placement: {node_selector: 5}\n",
                 "runtime_options_list": spec + "runtime_options: [a]\n"}
        policies = {"noise_nan": "analysis:\n  instance_noise_pct: .nan\n", "slo_inf": "slo:\n  max_p99_ms: .inf\n",
                    "confidence_bool": "statistics:\n  confidence: true\n",
                    "duplicate_keys": "slo:\n  max_p99_ms: 5\nslo:\n  max_p99_ms: 10000\n",
                    "bootstrap_3e6": "statistics:\n  bootstrap_resamples: 3000000\n",
                    "bootstrap_1e8": "statistics:\n  bootstrap_resamples: 100000000\n"}
        for prefix, documents in (("spec", specs), ("policy", policies)):
            for name, text in documents.items():
                (files / f"{prefix}-{name}.yaml").write_text(text)
                self.values[f"{prefix}_{name}"] = str(files / f"{prefix}-{name}.yaml")

    def prepare(self, setup: str, state: Path) -> None:
        """Put the case's precondition in place (in the case's own directory, the state's parent)."""
        super().prepare("corrupt_state" if setup == "corrupt_state_with_user_file" else setup, state)
        tmp = state.parent
        if setup == "corrupt_state_with_user_file":
            (state / "notes.txt").write_text("kept next to the state")
        version = tmp / "pvc" / "models" / "shared"
        if setup in ("user_files_at_version", "user_files_and_our_marker_elsewhere"):
            (version / "important" / "data").mkdir(parents=True)
            (version / "important" / "data" / "labels.csv").write_text("id,label\n1,cat\n")
            (version / "important" / "README").write_text("do not delete")
            if setup == "user_files_and_our_marker_elsewhere":
                (version / "other" / ".meshserve-publishing").parent.mkdir(parents=True)
                (version / "other" / ".meshserve-publishing").write_text("")
        elif setup == "plain_file_at_version":
            version.mkdir(parents=True)
            (version / "README").write_text("the team's notes")
        elif setup in ("user_out_dir", "user_cache_dir", "user_file_in_compile_dir"):
            folder = tmp / {"user_out_dir": "out", "user_cache_dir": "cache", "user_file_in_compile_dir": "compiled"}[
                setup]
            folder.mkdir(parents=True)
            (folder / "notes.txt").write_text("years of work")
        elif setup == "user_partial_beside_out":
            (tmp / "out.partial").mkdir(parents=True)
            (tmp / "out.partial" / "draft.txt").write_text("mine, not staging")
        elif setup == "directory_where_compile_writes":
            (tmp / "compiled" / "train_to_serve.kfp.yaml").mkdir(parents=True)
            (tmp / "compiled" / "train_to_serve.kfp.yaml" / "mine.txt").write_text("kept")
        elif setup in ("candidate_copy", "policy_copy", "payload_copy"):
            source = {"candidate_copy": self.values["result"], "policy_copy": None, "payload_copy": None}[setup]
            target = {"candidate_copy": "candidate.json", "policy_copy": "policy.yaml",
                      "payload_copy": "payload.json"}[setup]
            tmp.mkdir(parents=True, exist_ok=True)
            (tmp / target).write_text(Path(source).read_text() if source else
                                      "slo:\n  max_p99_ms: 10000\n" if setup == "policy_copy" else
                                      '{"instances": [[0.0]]}')


def _forged_text(real: dict, forgery: object, other_histogram: str) -> str:
    """The real result with one forgery applied, as the text a gate would read."""
    import copy

    if forgery == "DUPLICATE":
        text = json.dumps({**real, "success_ratio": 0.0})
        return text[:-1] + ', "success_ratio": 1.0}'
    if forgery == "TRUNCATE":
        text = json.dumps(real)
        return text[: len(text) // 2]
    if forgery == "EMPTY":
        return "{}"
    document = copy.deepcopy(real)
    for change in forgery if isinstance(forgery, list) else [forgery]:
        text = _apply(document, change, other_histogram)
    return text


def _apply(document: dict, change: tuple, other_histogram: str) -> str:
    """Apply one (dotted path, value) change to the document; return the document's text after it."""
    import datetime

    dotted, value = change
    *parents, leaf = dotted.split(".")
    holder = document
    for part in parents:
        holder = holder[part]
    if value == "DROP":
        del holder[leaf]
    elif value == "YESTERDAY":
        ended = datetime.datetime.fromisoformat(document["ended_at"])
        holder[leaf] = (ended - datetime.timedelta(days=1)).isoformat()
    elif value == "OTHER_HISTOGRAM":
        holder[leaf] = other_histogram
    elif value == "NAN_SAMPLE":
        holder[leaf] = [float("nan")] + holder.get(leaf, [])[1:]
    elif value in ("NaN", "Infinity"):
        holder[leaf] = float("nan") if value == "NaN" else float("inf")
    elif value == "-1e999":
        holder[leaf] = "@@RAW@@"
        return json.dumps(document).replace('"@@RAW@@"', "-1e999")
    else:
        holder[leaf] = value
    return json.dumps(document)


@dataclass
class TrustOutcome:
    """What one trust case did: the issue-13 outcome, whether it hung, and what it failed to keep."""

    case: TrustCase
    outcome: Outcome | None
    lost: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """hang first; then cli_cases' verdicts, with data loss before state left (see the module docstring)."""
        if self.outcome is None:
            return "hang"
        first = self.outcome.verdict
        if first in ("traceback", "secret"):
            return first
        return "data loss" if self.lost else first

    def describe(self) -> str:
        """One line for a failure message."""
        if self.outcome is None:
            return f"hang: no exit within {HANG_SECONDS} s"
        return (f"{self.verdict}: exit {self.outcome.code} (documented {self.case.exit}); stderr "
                f"{self.outcome.err[-500:]!r}; lost {self.lost}; leftovers {self.outcome.leftovers}; secret in "
                f"{self.outcome.secret_in}")


class _Hung(BaseException):
    """Raised by the alarm: the case did not exit in time (a BaseException, so no handler takes it)."""


def run_trust_case(case: TrustCase, workspace: TrustWorkspace, tmp: Path) -> TrustOutcome:
    """Run one case in this process, bounded by an alarm, and check what it had to keep."""
    from components import redaction

    redaction._registered.clear()  # each case must register (and so scrub) its own secrets
    tmp.mkdir(parents=True, exist_ok=True)
    workspace.prepare(case.setup, tmp / "state")
    kept = {path: _snapshot(Path(workspace.expand(path, tmp))) for path in case.keeps}
    timed = TrustCase(case.args, case.exit, case.says, {"MESHSERVE_REQUEST_TIMEOUT_S": "1", **case.env}, "",
                      case.kind, case.keeps, case.channel)

    def hung(signum, frame):
        raise _Hung

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        outcome: Outcome | None = run_case(timed, workspace, tmp)
    except _Hung:
        outcome = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    lost = [path for path, before in kept.items() if _snapshot(Path(workspace.expand(path, tmp))) != before]
    if outcome is not None:  # what the case had to keep is the user's, not state left behind
        outcome.leftovers = [p for p in outcome.leftovers if p not in {workspace.expand(k, tmp) for k in case.keeps}]
    return TrustOutcome(case, outcome, lost)


def _snapshot(path: Path) -> object:
    """Everything under a path (names and bytes), to tell whether it changed; None when it is missing."""
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        return sorted((str(p.relative_to(path)), p.read_bytes() if p.is_file() else b"")
                      for p in path.rglob("*"))
    return None


def main() -> None:
    """Run every case and print the failures, then the tables by class and by command."""
    import tempfile

    from tests.support.cli_cases import prepared_inputs

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    with tempfile.TemporaryDirectory() as work:
        workspace = TrustWorkspace(Path(work), *prepared_inputs(Path(work)))
        outcomes = [run_trust_case(case, workspace, Path(work) / f"case-{i:03d}") for i, case in enumerate(CASES)]
        workspace.close()
    for outcome in outcomes:
        if outcome.verdict != "good":
            print(f"{' '.join(outcome.case.args)[:110]!r}: {outcome.describe()[:400]}")
    print(table(outcomes, "class", lambda outcome: outcome.case.kind, VERDICTS), "",
          table(outcomes, "command", lambda outcome: outcome.case.command, VERDICTS), sep="\n")


if __name__ == "__main__":
    main()
