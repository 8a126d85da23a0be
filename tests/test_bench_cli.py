"""`meshserve bench`, `benchmark` under kfp.local, and the Hera template through Hera's runner."""

import json
import socket
from pathlib import Path

import pytest

from components.contracts import schema_errors
from tests.test_cli import assert_one_line_error, meshserve
from tests.test_hera_runner import run_workflow_template


@pytest.fixture
def server(inference_server):
    return inference_server


@pytest.fixture
def silent_listener():
    """A port that accepts connections, to prove a refused run sent nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


def test_bench_writes_json_and_html(server, tmp_path):
    completed = meshserve("bench", server.http_url, "--protocol", "v2-rest", "--model", "echo", "--sample", "iris",
                          "-qps", "100", "-t", "1s", "--json", str(tmp_path / "r.json"), "--html",
                          str(tmp_path / "r.html"))
    assert completed.returncode == 0, completed.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert schema_errors("benchmark_result", result) == [] and result["counts"]["success"] == 100
    assert "achieved" in completed.stdout and completed.stderr == ""  # no progress line off a terminal
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") == 2


@pytest.mark.parametrize("flags, message", [
    (["-qps", "-5"], "qps: must be above 0 (got -5.0)"),
    (["-qps", "0"], "qps: must be above 0"),
    (["-t", "0s"], "duration: must be above 0"),
    (["-t", "soon"], "t: 'soon' is not a duration"),
    (["-H", "no-colon"], "H: a header is not 'Name: value'"),
    (["-payload-file", "/nonexistent/body.json"], "payload_file: '/nonexistent/body.json' does not exist"),
    (["--protocol", "soap"], "protocol: unknown protocol 'soap'"),
    (["-c", "0"], "concurrency: must be at least 1"),
    (["--protocol", "kserve-v1", "--model", "m"], "payload: kserve-v1 needs a request body"),
])
def test_bad_flags_fail_before_any_load(silent_listener, tmp_path, flags, message):
    completed = meshserve("bench", silent_listener, *flags, "--json", str(tmp_path / "r.json"))
    assert_one_line_error(completed, message)
    assert not (tmp_path / "r.json").exists()


def test_benchmark_component_under_kfp_local(server, isolated_state):
    from kfp import local

    from components.steps.benchmark.kfp_component import benchmark

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(isolated_state / "kfp"),
               raise_on_error=True)
    task = benchmark(url=server.http_url, protocol="kserve-v1", model="echo", sample="iris", qps=100.0,
                     duration_s=1.0, headers=["x-run: test"])
    result = json.loads(Path(task.outputs["result"].path).read_text())
    assert schema_errors("benchmark_result", result) == [] and result["sent"] == 100
    assert task.outputs["metrics"].metadata["success_ratio"] == 1.0
    assert "data:image/png;base64," in Path(task.outputs["report"].path).read_text()


def test_benchmark_template_through_the_hera_runner(server, tmp_path):
    completed = run_workflow_template("benchmark", "benchmark", {
        "url": server.http_url, "protocol": "kserve-v1", "model": "echo", "sample": "iris", "qps": "100",
        "duration_s": "1", "headers": '["x-run: hera"]'}, tmp_path)
    assert completed.returncode == 0, completed.stderr
    result = json.loads((tmp_path / "artifacts" / "result").read_text())
    assert result["counts"]["success"] == 100
    assert float((tmp_path / "parameters" / "success-ratio").read_text()) == 1.0
    assert float((tmp_path / "parameters" / "p99-ms").read_text()) == result["latency_ms"]["p99"]


V2_IRIS = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                   "data": [6.8, 2.8, 4.8, 1.4]}]})


def test_no_secret_of_a_url_or_a_header_reaches_the_result_the_report_or_the_gate(server, tmp_path):
    """Issue 13, finding 5: user info, query values and unrecognized header values are redacted everywhere."""
    host = server.http_url.removeprefix("http://")
    secrets = ("PASSW0RD", "T0KEN-VALUE", "custom-s3cret", "bearer-xyz")
    runs = {}
    for name, password in (("a", "PASSW0RD"), ("b", "other-pass")):
        completed = meshserve("bench", f"http://user:{password}@{host}/v2/models/echo/infer?token=T0KEN-VALUE",
                              "--protocol", "http", "-payload", V2_IRIS, "-H", "X-Custom-Token: custom-s3cret",
                              "-H", "Authorization: bearer-xyz", "-H", "model: echo", "-qps", "50", "-n", "20",
                              "--json", str(tmp_path / f"{name}.json"), "--html", str(tmp_path / f"{name}.html"))
        assert completed.returncode == 0, completed.stderr
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
        shown = completed.stdout + completed.stderr + (tmp_path / f"{name}.json").read_text() + \
            (tmp_path / f"{name}.html").read_text()
        assert not [s for s in secrets if s in shown]
    gate = meshserve("gate", "--candidate", str(tmp_path / "a.json"), "--baseline", str(tmp_path / "b.json"),
                     "--json", str(tmp_path / "verdict.json"), "--min-samples", "20")
    assert gate.returncode in (0, 3, 4), gate.stderr
    assert not [s for s in secrets if s in gate.stdout + gate.stderr + (tmp_path / "verdict.json").read_text()]
    target = runs["a"]["target"]
    assert target["headers"]["model"] == "echo" and target["headers"]["X-Custom-Token"].startswith("<redacted:")
    assert target["url"].startswith("http://<redacted:") and "token=<redacted:" in target["url"]
    assert runs["a"]["target"]["url"] != runs["b"]["target"]["url"]  # the hashes still tell the two loads apart
    assert runs["a"]["counts"]["success"] == 20  # the Host header carries no user info: the server answered
