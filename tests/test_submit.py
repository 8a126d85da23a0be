"""`meshserve submit` against HTTP servers on 127.0.0.1 that answer like KFP and Argo and record the requests."""

from __future__ import annotations

import pytest
import yaml

from pipelines.cli import main
from pipelines.compile import COMPILED_DIR
from tests.support.recording_server import start_recording_server

TOKEN = "t0ken-for-tests"


@pytest.fixture
def kfp_server():
    server = start_recording_server("kfp", TOKEN)
    yield server
    server.stop()


@pytest.fixture
def argo_server():
    server = start_recording_server("argo", TOKEN)
    yield server
    server.stop()


def test_a_kfp_run_carries_the_compiled_pipeline_and_typed_parameters(kfp_server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads its context file from HOME
    code = main(["submit", "--kfp", kfp_server.url, "--experiment", "digits-rollouts", "-p", "platform=kubernetes",
                 "-p", "canary_percent=20", "-p", "node_selector={\"pool\": \"gpu\"}", "-p", "qps=500"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"submitted run run-42: {kfp_server.url}/#/runs/details/run-42"
    paths = [(r.method, r.path.split("?")[0]) for r in kfp_server.requests]
    assert paths[0] == ("GET", "/apis/v2beta1/healthz")
    assert ("POST", "/apis/v2beta1/experiments") in paths and paths[-1] == ("POST", "/apis/v2beta1/runs")
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in kfp_server.requests)
    experiment = next(r.body for r in kfp_server.requests if r.path.startswith("/apis/v2beta1/experiments")
                      and r.method == "POST")
    assert experiment["display_name"] == "digits-rollouts"
    run = kfp_server.requests[-1].body
    pipeline, platform = (d for d in yaml.safe_load_all((COMPILED_DIR / "train_to_serve.kfp.yaml").read_text()) if d)
    assert run["pipeline_spec"] == {"pipeline_spec": pipeline, "platform_spec": platform}  # the committed YAML
    assert run["runtime_config"]["parameters"] == {"platform": "kubernetes", "canary_percent": 20,
                                                   "node_selector": {"pool": "gpu"}, "qps": 500.0}
    assert run["experiment_id"] == "exp-7" and run["service_account"] == "meshserve-steps"
    assert TOKEN not in out + err


def test_an_argo_workflow_is_submitted_from_the_template(argo_server, monkeypatch, capsys, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("ARGO_TOKEN", raising=False)
    code = main(["submit", "--argo", argo_server.url, "--namespace", "ml", "--token-file", str(token_file),
                 "-p", "runtime=tfserving", "-p", "framework=tensorflow"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"submitted workflow meshserve-train-to-serve-x7k2q: {argo_server.url}/workflows/ml/" \
                          "meshserve-train-to-serve-x7k2q"
    submit = argo_server.requests[-1]
    assert (submit.method, submit.path) == ("POST", "/api/v1/workflows/ml/submit")
    assert submit.body["resourceKind"] == "WorkflowTemplate"
    assert submit.body["resourceName"] == "meshserve-train-to-serve"
    assert submit.body["submitOptions"]["parameters"] == ["runtime=tfserving", "framework=tensorflow"]
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("host_flag, extra, expected", [
    ("--kfp", ["-p", "replicas=3"], "replicas: is not a parameter of the pipeline"),
    ("--argo", ["-p", "replicas=3"], "replicas: is not a parameter of the WorkflowTemplate"),
    ("--kfp", ["-p", "canary_percent=ten"], "canary_percent: 'ten' is not a number integer"),
    ("--kfp", ["-p", "tolerations={}"], "tolerations: '{}' is not a JSON list"),
    ("--kfp", ["-p", "oops"], "parameter: 'oops' is not NAME=VALUE"),
])
def test_a_bad_parameter_is_refused_before_any_request(host_flag, extra, expected, kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    code = main(["submit", host_flag, kfp_server.url, *extra])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1
    assert kfp_server.requests == []


@pytest.mark.parametrize("host_flag", ["--kfp", "--argo"])
def test_a_rejected_token_is_one_line(host_flag, kfp_server, argo_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "wrong")
    monkeypatch.setenv("ARGO_TOKEN", "wrong")
    server = kfp_server if host_flag == "--kfp" else argo_server
    code = main(["submit", host_flag, server.url])
    err = capsys.readouterr().err
    assert code == 2 and "refused the token (401)" in err and err.count("\n") == 1 and "wrong" not in err


@pytest.mark.parametrize("host_flag", ["--kfp", "--argo"])
def test_an_unreachable_host_is_one_line(host_flag, capsys):
    from tests.support.servers import free_port

    code = main(["submit", host_flag, f"http://127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach" in err and err.count("\n") == 1


@pytest.mark.parametrize(("kind", "flag", "env"), [("kfp", "--kfp", "KFP_TOKEN"), ("argo", "--argo", "ARGO_TOKEN")])
def test_a_redirect_to_another_origin_never_carries_the_token(kind, flag, env, monkeypatch, capsys):
    """The server answers the health probe with a 302 to another host: the bearer token is not sent there
    (urllib's unredirected header), and the command fails in one line instead of submitting."""
    from tests.support.hostile_server import redirect_server

    elsewhere = start_recording_server(kind, TOKEN)
    redirecting = redirect_server(elsewhere.url)
    monkeypatch.setenv(env, TOKEN)
    try:
        code = main(["submit", flag, f"http://127.0.0.1:{redirecting.server_address[1]}"])
    finally:
        redirecting.shutdown()
        redirecting.server_close()
        elsewhere.stop()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert elsewhere.requests and all("authorization" not in r.headers for r in elsewhere.requests)
    assert TOKEN not in err


# A run its deploy or analysis would refuse is refused before anything is submitted, with the reason.
REFUSED = [
    (["runtime=tfserving"], "model_format: runtime tfserving does not serve sklearn models"),
    (["runtime=modelmesh", "canary_percent=10"], "canary_percent: ModelMesh routes by model name"),
    (["runtime=modelmesh"], "policy: router istio with runtime modelmesh cannot route a fresh copy"),
    (["router=none", "canary_percent=10"], "canary_percent: no router splits traffic"),
    (["router=none"], "policy: router none with runtime kserve-raw cannot route a fresh copy"),
    (["autoscaling=kpa"], "autoscaling: kpa with runtime kserve-raw"),
]


@pytest.mark.parametrize("kind", ["kfp", "argo"])
@pytest.mark.parametrize("parameters, message", REFUSED, ids=[" ".join(p) for p, _ in REFUSED])
def test_a_run_the_deploy_or_analysis_would_refuse_is_refused_at_submit(kind, parameters, message, capsys,
                                                                        monkeypatch, request):
    server = request.getfixturevalue(f"{kind}_server")
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    names = [p if kind == "kfp" else p.split("=", 1)[0].replace("_", "-") + "=" + p.split("=", 1)[1]
             for p in parameters]
    code = main(["submit", f"--{kind}", server.url, *[flag for p in names for flag in ("-p", p)]])
    assert code == 2 and message in capsys.readouterr().err
    assert server.requests == []  # nothing reached the server


def test_modelmesh_through_the_pipeline_with_its_own_analysis_baseline_is_submitted(kfp_server, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    assert main(["submit", "--kfp", kfp_server.url, "-p", "runtime=modelmesh", "-p", "canary_percent=0",
                 "-p", 'policy={"analysis": {"baseline": "primary"}}']) == 0
