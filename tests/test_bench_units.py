"""Load-generator parts on their own: pacers, settings, targets, histograms, results, reporters."""

import base64
import json

import pytest

from components.benchmark.histogram import LatencyHistogram
from components.benchmark.pacer import ConstantPacer, JitteredPacer, LinearPacer
from components.benchmark.reporters.html import html_report
from components.benchmark.reporters.kfp_metrics import scalar_metrics
from components.benchmark.reporters.text import text_report
from components.benchmark.result import merge_partials
from components.benchmark.runner import PartialResult
from components.benchmark.settings import BenchSettings, parse_duration, parse_header
from components.benchmark.targets import build_request, grpc_payload, rest_payload
from components.contracts import schema_errors
from components.errors import InvalidInputError
from components.redaction import redacted


def test_constant_pacer_spaces_hits_evenly():
    pacer = ConstantPacer(500)
    assert [pacer.due(i) for i in range(3)] == [0.0, 0.002, 0.004]
    assert pacer.hits_until(10) == 5000


def test_linear_pacer_ramps_and_counts_consistently():
    pacer = LinearPacer(100, 300, 10)
    dues = [pacer.due(i) for i in range(0, 3000, 50)]
    assert dues == sorted(dues)
    for hit in (0, 1, 500, 1999, 2500):
        assert pacer.hits_until(pacer.due(hit)) == pytest.approx(hit, abs=1e-6)
    assert pacer.hits_until(10) == pytest.approx(2000)  # mean rate 200 over 10 s
    assert pacer.rate_at(5) == pytest.approx(200)


def test_jitter_moves_hits_within_ten_percent_of_the_interval():
    pacer = JitteredPacer(ConstantPacer(100), seed=1)
    offsets = [pacer.due(i) - i / 100 for i in range(1, 1000)]
    assert max(abs(o) for o in offsets) <= 0.001 + 1e-12
    assert len(set(round(o, 9) for o in offsets)) > 900


@pytest.mark.parametrize("changes, message", [
    (dict(qps=-5), r"^qps: must be above 0 \(got -5\)"),
    (dict(qps=0), r"^qps: must be above 0"),
    (dict(duration=0), r"^duration: must be above 0"),
    (dict(duration=None), r"^duration: the run would be unbounded; pass -t DURATION or -n COUNT"),
    (dict(concurrency=0), r"^concurrency: must be at least 1"),
    (dict(count=0), r"^count: must be at least 1"),
    (dict(protocol="soap"), r"^protocol: unknown protocol 'soap'"),
    (dict(protocol="v2-grpc"), r"^model: v2-grpc needs the model name"),
    (dict(ramp_to_qps=10), r"^ramp_to_qps: a ramp needs a starting rate"),
    (dict(duration=7200), r"^duration: the run could last 7200 s, over the 3600 s limit"),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(InvalidInputError, match=message):
        BenchSettings(url="http://127.0.0.1:1", **changes).validated()


def test_duration_and_header_parsing():
    assert [parse_duration(t, "t") for t in ("250ms", "10s", "1.5m", "2")] == [0.25, 10.0, 90.0, 2.0]
    with pytest.raises(InvalidInputError, match="^t: 'ten' is not a duration"):
        parse_duration("ten", "t")
    assert parse_header("Host: sklearn-iris.default.example.com") == ("Host", "sklearn-iris.default.example.com")
    with pytest.raises(InvalidInputError, match="^H: a header is not 'Name: value'"):
        parse_header("no colon here")


def test_split_divides_rates_workers_and_counts():
    parts = BenchSettings(url="http://x:1", qps=1000, concurrency=9, count=1001, procs=4).split(4)
    assert sum(p.qps for p in parts) == pytest.approx(1000)
    assert sum(p.count for p in parts) == 1001 and sum(p.concurrency for p in parts) == 9
    assert len({p.seed for p in parts}) == 4


def test_rest_targets_complete_base_urls():
    settings = BenchSettings(url="http://127.0.0.1:8080", protocol="kserve-v1", model="sklearn-iris", payload=b"{}")
    spec = build_request(settings)
    assert spec.address == "http://127.0.0.1:8080/v1/models/sklearn-iris:predict"
    assert spec.method == "POST" and ("Content-Type", "application/json") in spec.headers
    full = BenchSettings(url="http://127.0.0.1:8080/custom/path", protocol="v2-rest", model="m", payload=b"{}")
    assert build_request(full).address == "http://127.0.0.1:8080/custom/path"
    with pytest.raises(InvalidInputError, match="^url: '127.0.0.1:8080' is not an http"):
        build_request(BenchSettings(url="127.0.0.1:8080"))
    with pytest.raises(InvalidInputError, match="^url: 'http://h:1/x' is not a gRPC address"):
        build_request(BenchSettings(url="http://h:1/x", protocol="v2-grpc", model="m"))


def test_payloads_have_the_protocols_shapes():
    v1 = json.loads(rest_payload("kserve-v1", "input-0", [2, 2], "FP32", [1.0, 2.0, 3.0, 4.0]))
    assert v1 == {"instances": [[1.0, 2.0], [3.0, 4.0]]}
    v2 = json.loads(rest_payload("v2-rest", "input-0", [1, 4], "FP32", [1.0, 2.0, 3.0, 4.0]))
    assert v2["inputs"][0] == {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest.FromString(grpc_payload("v2-grpc", "m", "input-0", [1, 3], "FP32", [1, 2, 3]))
    assert (request.model_name, list(request.inputs[0].shape)) == ("m", [1, 3])
    assert list(request.inputs[0].contents.fp32_contents) == [1.0, 2.0, 3.0]


def test_histograms_merge_exactly_across_encodings():
    first, second = LatencyHistogram(), LatencyHistogram()
    for ms in range(1, 101):
        first.record(ms / 1000)
        second.record(ms / 100)
    merged = LatencyHistogram.decode(first.encode())
    merged.merge(LatencyHistogram.decode(second.encode()))
    assert merged.count == 200
    summary = merged.summary_ms()
    assert summary["min"] == pytest.approx(1.0, rel=1e-3) and summary["max"] == pytest.approx(1000, rel=1e-3)
    every_ms = sorted([ms for ms in range(1, 101)] + [10 * ms for ms in range(1, 101)])
    assert summary["p50"] == pytest.approx(every_ms[99], rel=1e-3)  # the 100th of 200 values


def _partial(latencies_s, statuses, errors=None, start=1000.0):
    histogram = LatencyHistogram()
    for latency in latencies_s:
        histogram.record(latency)
    return PartialResult(histogram.encode(), statuses, errors or {}, [round(x * 1e6) for x in latencies_s],
                         len(latencies_s), start, start + 2.0)


@pytest.fixture
def result_document():
    settings = BenchSettings(url="http://127.0.0.1:9/", qps=100, duration=2,
                             headers=(("Authorization", "Bearer s3cr3t"),))
    spec = build_request(settings)
    partials = [_partial([0.001] * 100, {"200": 100}), _partial([0.002] * 99 + [3.0], {"200": 99, "-": 1},
                                                                 {"timeout": 1})]
    return merge_partials(settings, spec, partials)


def test_result_document_follows_the_contract(result_document):
    assert schema_errors("benchmark_result", result_document) == []
    assert result_document["counts"] == {"total": 200, "success": 199, "by_status": {"-": 1, "200": 199},
                                         "by_error": {"timeout": 1}}
    assert result_document["success_ratio"] == pytest.approx(0.995)
    assert result_document["achieved_qps"] == pytest.approx(100.0)
    assert len(result_document["samples_us"]) == 200
    assert result_document["target"]["headers"] == {"Authorization": redacted("Bearer s3cr3t")}
    assert "s3cr3t" not in json.dumps(result_document)


def test_contract_rejects_unknown_fields_and_error_kinds(result_document):
    assert schema_errors("benchmark_result", {**result_document, "extra": 1})
    broken = json.loads(json.dumps(result_document))
    broken["counts"]["by_error"]["gremlins"] = 3
    assert schema_errors("benchmark_result", broken)


def test_reporters(result_document):
    text = text_report(result_document)
    assert "requested 100.0 qps, achieved 100.0 qps" in text and "timeout: 1" in text
    page = html_report(result_document)
    images = [part.split("'")[0] for part in page.split("data:image/png;base64,")[1:]]
    assert len(images) == 2 and all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    metrics = scalar_metrics(result_document)
    assert metrics["success_ratio"] == pytest.approx(0.995)
    assert metrics["latency_p99_ms"] == pytest.approx(2.0, rel=1e-3)
    assert metrics["latency_max_ms"] == pytest.approx(3000, rel=1e-3)


def test_every_error_kind_a_client_reports_is_in_the_result_contract():
    from components.benchmark.clients.base import ERROR_KINDS
    from components.contracts import load_schema

    pattern = next(iter(load_schema("benchmark_result")["properties"]["counts"]["properties"]["by_error"]
                        ["patternProperties"]))
    assert set(pattern.strip("^$()").split("|")) == set(ERROR_KINDS)
