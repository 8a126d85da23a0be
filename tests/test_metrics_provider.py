"""The metrics provider against a real Prometheus (Debian's package, started here on 127.0.0.1) scraping an
exporter of Istio's standard metrics that the test drives: the default queries read a success rate, a latency
quantile and a request count; a Prometheus that cannot be reached, a query that matches nothing, a NaN and a
malformed answer are each their own outcome, never a value to pass."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from components.errors import InvalidInputError
from components.metrics.prometheus import PrometheusProvider
from components.metrics.provider import MALFORMED, UNREACHABLE
from components.metrics.registry import metrics_provider_for
from components.metrics.templates import DEFAULT_TEMPLATES, QueryArguments, render_query
from components.progressive.guard import ERROR, FAIL, NO_DATA, PASS, LiveGuard
from components.progressive.policy import GuardPolicy
from tests.support.prometheus_server import prometheus_version, start_prometheus
from tests.support.servers import free_port, serve_bytes

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None and not os.path.exists("/usr/bin/prometheus"),
                                reason="needs Debian's prometheus: `make test` installs it")
STARTED = time.monotonic()
BUCKETS = ((5, 0.50), (10, 0.99), (25, 1.0))  # le (ms), share of requests at or under it


def istio_exposition() -> str:
    """Counters growing at 100 requests a second for models/digits-v2 (5% answered 500) and not at all for
    models/idle: Istio's names and labels, as a destination sidecar reports them."""
    seconds = time.monotonic() - STARTED
    lines = []
    for workload, rate in (("digits-v2", 100.0), ("idle", 0.0)):
        labels = f'reporter="destination",destination_workload_namespace="models",destination_workload="{workload}"'
        total = 10 + rate * seconds if rate else 10
        for code, share in (("200", 0.95), ("500", 0.05)):
            lines.append(f'istio_requests_total{{{labels},response_code="{code}"}} {total * share}')
        for le, share in BUCKETS:
            lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} {total * share}')
        lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {total}')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    exporter = serve_bytes(lambda: istio_exposition().encode())
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{exporter.server_address[1]}"])
    provider = PrometheusProvider(server.address)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the 5 s interval holds five scrapes (one a second)
        scrapes = provider.query("count_over_time(up[5s])")
        if scrapes.usable and scrapes.value >= 5:
            break
        time.sleep(0.5)
    yield provider
    server.stop()
    exporter.shutdown()


def measure(provider, template: str, target: str):
    return provider.query(render_query(DEFAULT_TEMPLATES[template], QueryArguments("models", target, "5s")))


def test_the_default_istio_queries_read_live_traffic(prometheus):
    success = measure(prometheus, "request-success-rate", "digits-v2")
    p99 = measure(prometheus, "request-duration-p99", "digits-v2")
    count = measure(prometheus, "request-count", "digits-v2")
    assert success.usable and success.value == pytest.approx(95.0, abs=0.01)
    assert p99.usable and p99.value == pytest.approx(10.0, abs=0.01)  # 99% at or under the 10 ms bucket
    assert count.usable and 350 <= count.value <= 650  # about 100 a second over 5 s, as Prometheus extrapolates
    print(f"\n{prometheus_version()}: success {success.value:.2f}%, p99 {p99.value:.2f} ms, "
          f"{count.value:.0f} requests in 5 s")


def test_a_query_matching_nothing_is_no_data(prometheus):
    assert measure(prometheus, "request-success-rate", "absent").outcome == NO_DATA


def test_no_requests_make_a_nan_which_is_no_data_not_a_pass(prometheus):
    measured = measure(prometheus, "request-success-rate", "idle")  # 0 / 0 over the interval
    assert measured.outcome == NO_DATA and "NaN" in measured.detail and not measured.usable


def test_a_query_prometheus_refuses_is_malformed_with_its_error(prometheus):
    measured = prometheus.query("sum(rate(istio_requests_total[5s]")
    assert measured.outcome == MALFORMED and "parse error" in measured.detail


def test_an_unreachable_prometheus_is_its_own_outcome():
    measured = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout_s=2).query("up")
    assert measured.outcome == UNREACHABLE and not measured.usable


@pytest.mark.parametrize("answer", [
    b"<html>login</html>",
    json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode(),
    json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1, "1"]}, {"metric": {}, "value": [1, "2"]}]}}).encode(),
    json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1, "fast"]}]}}).encode(),
], ids=["html", "matrix", "two-series", "not-a-number"])
def test_a_malformed_answer_is_never_a_value(answer):
    server = serve_bytes(lambda: answer)
    try:
        measured = PrometheusProvider(f"http://127.0.0.1:{server.server_address[1]}").query("up")
        assert measured.outcome == MALFORMED and not measured.usable
    finally:
        server.shutdown()


def test_templates_refuse_unknown_placeholders_and_values_that_would_break_the_query():
    with pytest.raises(InvalidInputError, match="unknown placeholder"):
        render_query("up{job='{{ job }}'}", QueryArguments("models", "digits-v2"))
    with pytest.raises(InvalidInputError, match="^target: "):
        render_query(DEFAULT_TEMPLATES["request-count"], QueryArguments("models", 'x"} or vector(1) #'))
    with pytest.raises(InvalidInputError, match="unknown metrics provider"):
        metrics_provider_for("datadog", "http://127.0.0.1:1")


def guard(provider, **policy) -> LiveGuard:
    return LiveGuard(provider, GuardPolicy(**policy), "models", "5s")


def test_the_live_guard_passes_fails_or_has_no_data_on_real_prometheus_figures(prometheus):
    passing = guard(prometheus, min_success_rate=90.0, max_p99_ms=25.0).read("digits-v2")
    assert passing.outcome == PASS and passing.success_rate == pytest.approx(95.0, abs=0.01)
    assert passing.p99_ms == pytest.approx(10.0, abs=0.01) and passing.requests >= 350
    assert 'destination_workload="digits-v2"' in passing.queries["request-success-rate"]
    failing = guard(prometheus, min_success_rate=99.0).read("digits-v2")
    assert failing.outcome == FAIL and "success rate 95.00% is under 99%" in failing.detail
    slow = guard(prometheus, min_success_rate=90.0, max_p99_ms=5.0).read("digits-v2")
    assert slow.outcome == FAIL and "p99 10.0 ms is over 5 ms" in slow.detail
    few = guard(prometheus, min_success_rate=90.0, min_requests=100_000).read("digits-v2")
    assert few.outcome == NO_DATA and "the guard needs 100000" in few.detail
    for workload in ("idle", "absent"):  # no requests (NaN), no series: never a pass
        assert guard(prometheus).read(workload).outcome == NO_DATA


def test_an_unreachable_or_malformed_provider_is_an_error_reading_never_a_pass():
    unreachable = guard(PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout_s=2)).read("digits-v2")
    assert unreachable.outcome == ERROR and "cannot reach Prometheus" in unreachable.detail
    server = serve_bytes(lambda: b"<html>login</html>")
    try:
        malformed = guard(PrometheusProvider(f"http://127.0.0.1:{server.server_address[1]}")).read("digits-v2")
        assert malformed.outcome == ERROR and "not JSON" in malformed.detail
    finally:
        server.shutdown()
