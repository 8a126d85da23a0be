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
    (["-H", "no-colon"], "H: malformed header 'no-colon'"),
    (["-payload-file", "/nonexistent/body.json"], "payload_file: cannot read /nonexistent/body.json"),
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
