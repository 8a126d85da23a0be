"""The load generator against a real HTTP and gRPC inference server on 127.0.0.1."""

import os
import signal
import socket
import threading
import time

import pytest

from components.contracts import schema_errors
from components.steps.benchmark.core import run_benchmark_step
from tests.support.servers import free_port

IRIS_ROW = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'


@pytest.fixture
def server(inference_server):
    return inference_server


def bench(url, **kwargs):
    result = run_benchmark_step(url, **kwargs)
    assert schema_errors("benchmark_result", result) == []
    return result


def test_closed_loop_count_is_exact(server):
    result = bench(server.http_url + "/", count=300, duration=None, concurrency=4)
    assert result["counts"]["total"] == 300 == result["sent"]
    assert result["counts"]["by_status"] == {"200": 300} and result["requested_qps"] is None
    assert len(result["samples_us"]) == 300


def test_open_loop_holds_the_rate_and_excludes_warmup(server):
    result = bench(server.http_url, protocol="kserve-v1", model="echo", payload=IRIS_ROW, qps=200,
                   duration=1.5, warmup=0.5)
    assert result["sent"] == 300  # hits due in [0.5 s, 2.0 s) at 200 qps; warm-up hits not counted
    assert result["counts"]["total"] == 300 and result["success_ratio"] == 1.0
    assert result["requested_qps"] == 200
    assert result["achieved_qps"] == pytest.approx(200, rel=0.02)


@pytest.mark.parametrize("protocol, target", [
    ("kserve-v1", "http_url"), ("v2-rest", "http_url"), ("tfserving-rest", "http_url"),
    ("v2-grpc", "grpc_address"), ("tfserving-grpc", "grpc_address"),
])
def test_every_protocol_with_a_dataset_sample(server, protocol, target):
    result = bench(getattr(server, target), protocol=protocol, model="echo", sample="iris", count=50,
                   duration=None, concurrency=2)
    assert result["counts"]["success"] == 50, result["counts"]


@pytest.mark.parametrize("protocol, target, status", [
    ("v2-rest", "http_url", "400"), ("v2-grpc", "grpc_address", "INVALID_ARGUMENT"),
])
def test_wrong_shape_is_counted_as_rejected(server, protocol, target, status):
    result = bench(getattr(server, target), protocol=protocol, model="echo", sample="digits", count=20,
                   duration=None)
    assert result["counts"]["by_status"] == {status: 20}
    assert result["counts"]["by_error"] == {"rejected": 20} and result["success_ratio"] == 0


@pytest.mark.parametrize("model, error, status", [
    ("broken", "server_error", "503"), ("garbage", "malformed_response", "200"),
])
def test_server_faults_are_counted_by_kind(server, model, error, status):
    result = bench(server.http_url, protocol="kserve-v1", model=model, payload=IRIS_ROW, qps=100, duration=0.5)
    assert result["counts"]["by_error"] == {error: 50} and result["counts"]["by_status"] == {status: 50}


def test_timeouts_are_counted(server):
    result = bench(server.http_url, protocol="kserve-v1", model="slow", payload=IRIS_ROW, qps=50, duration=0.5,
                   timeout=0.005)
    assert result["counts"]["by_error"] == {"timeout": 25}
    assert result["latency_ms"]["min"] >= 4.0  # the event loop's timers fire within ~1 ms


def test_refused_connections_complete_the_run():
    result = bench(f"http://127.0.0.1:{free_port()}/", qps=100, duration=0.5)
    assert result["counts"]["by_error"] == {"connection_refused": 50} and result["sent"] == 50


def test_refused_grpc_connections_complete_the_run():
    result = bench(f"127.0.0.1:{free_port()}", protocol="v2-grpc", model="m", sample="iris", qps=50, duration=0.5,
                   timeout=0.5)
    assert result["counts"]["total"] == 25 and result["counts"]["by_error"] == {"connect_error": 25}


def test_headers_route_requests(server):
    routed = bench(server.http_url + "/routed", payload="{}", headers=["model: echo"], count=10, duration=None)
    unrouted = bench(server.http_url + "/routed", payload="{}", count=10, duration=None)
    assert routed["counts"]["by_status"] == {"200": 10} and unrouted["counts"]["by_status"] == {"404": 10}


def test_a_stalled_server_shows_in_the_tail(server):
    """SIGSTOP the server for 0.6 s mid-run: open-loop timing must charge the stall to the requests."""
    def stall():
        time.sleep(0.7)
        os.kill(server.process.pid, signal.SIGSTOP)
        time.sleep(0.6)
        os.kill(server.process.pid, signal.SIGCONT)

    staller = threading.Thread(target=stall)
    staller.start()
    result = bench(server.http_url, protocol="kserve-v1", model="echo", payload=IRIS_ROW, qps=200, duration=2,
                   concurrency=4)
    staller.join()
    assert result["counts"]["success"] == 400
    assert result["latency_ms"]["p99"] >= 400  # requests due during the stall waited for it
    assert result["latency_ms"]["p50"] < 50


def test_several_processes_merge_into_one_result(server):
    result = bench(server.http_url, protocol="kserve-v1", model="echo", payload=IRIS_ROW, qps=300, duration=1,
                   procs=2)
    assert result["sent"] == 300 and result["counts"]["total"] == 300
    assert len(result["samples_us"]) == 300 and result["settings"]["procs"] == 2


def test_only_the_given_address_is_contacted(server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    bench(server.http_url + "/", count=5, duration=None)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


def test_linear_ramp_sends_the_area_under_the_rate(server):
    result = bench(server.http_url + "/", qps=100, ramp_to_qps=300, duration=1.0)
    assert result["sent"] == 200 and result["requested_qps"] == 200  # mean of a 100→300 ramp over 1 s
    assert result["counts"]["success"] == 200


def test_a_paired_run_measures_both_at_the_same_time(server):
    from datetime import datetime

    from components.steps.benchmark.core import run_paired_benchmark_step

    candidate, baseline = run_paired_benchmark_step(  # the `slow` model answers 20 ms late
        server.http_url + "/v1/models/slow:predict", server.http_url + "/v1/models/echo:predict",
        candidate_headers=["x-meshserve-track: canary"], payload=IRIS_ROW, qps=100, duration=2.0, warmup=0.2)
    assert schema_errors("benchmark_result", candidate) == [] == schema_errors("benchmark_result", baseline)
    assert candidate["target"]["url"] != baseline["target"]["url"]
    assert candidate["target"]["headers"] == {"x-meshserve-track": "canary"} and baseline["target"]["headers"] == {}
    assert candidate["target"]["payload_sha256"] == baseline["target"]["payload_sha256"]
    for result in (candidate, baseline):
        assert result["counts"]["by_status"] == {"200": 200} and 97 <= result["achieved_qps"] <= 103
    for edge in ("started_at", "ended_at"):  # one window, not two
        apart = datetime.fromisoformat(candidate[edge]) - datetime.fromisoformat(baseline[edge])
        assert abs(apart.total_seconds()) < 0.1
    assert candidate["latency_ms"]["p50"] >= baseline["latency_ms"]["p50"] + 18  # the 20 ms delay shows


def test_side_by_side_loads_refuse_several_processes(server):
    from components.benchmark.core import run_benchmarks_side_by_side
    from components.benchmark.settings import BenchSettings
    from components.errors import InvalidInputError

    load = BenchSettings(url=server.http_url, qps=10, duration=0.2, procs=2)
    with pytest.raises(InvalidInputError, match="^procs: side-by-side loads share one event loop; use procs 1$"):
        run_benchmarks_side_by_side([load, load])
