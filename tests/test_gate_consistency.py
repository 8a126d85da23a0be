"""A result whose fields contradict each other never promotes (issue 13, finding 2): the gate fails closed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.gate.policy import policy_from_dict
from components.steps.gate.core import run_gate
from tests.support.results import result_document

POLICY = policy_from_dict({"slo": {"max_p99_ms": 50.0}, "statistics": {"min_samples": 500}})


def latencies(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(4.0, 0.5, 800) + 1.0


def judged(tmp_path, document: dict) -> tuple[str, str]:
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(document))
    verdict = run_gate(path, None, POLICY).verdict
    return verdict.decision, verdict.summary()


def test_a_consistent_result_promotes(tmp_path):
    assert judged(tmp_path, result_document(latencies()))[0] == "PROMOTE"


def _all_failed_yet_reported_successful(doc):
    doc["counts"] |= {"success": 0, "by_status": {"500": doc["counts"]["total"]},
                      "by_error": {"server_error": doc["counts"]["total"]}}


def _histogram_of_other_requests(doc):
    doc["histogram"] = result_document(latencies(seed=1)[:600])["histogram"]


def _samples_of_other_requests(doc):
    doc["samples_us"] = [value // 2 for value in doc["samples_us"]]


def _faster_than_measured(doc):
    doc["latency_ms"] |= {key: doc["latency_ms"][key] * 0.7 for key in ("p50", "p75", "p90", "p95", "p99")}


CONTRADICTIONS = {
    "no successes, 500s, success_ratio 1.0": (_all_failed_yet_reported_successful, "success_ratio 1.0 is not 0/800"),
    "statuses that do not add up": (lambda d: d["counts"].__setitem__("by_status", {"200": 10}),
                                    "statuses add up to 10, not the count 800"),
    "a count of 0": (lambda d: d["counts"].__setitem__("total", 0), "holds no measured requests"),
    "samples that contradict the histogram": (_samples_of_other_requests, "but the requests measured"),
    "a histogram of other requests": (_histogram_of_other_requests, "the histogram holds 600 requests, not 800"),
    "samples fewer than the count": (lambda d: d.__setitem__("samples_us", d["samples_us"][:100]),
                                     "100 samples for a count of 800"),
    "an achieved rate the count and seconds deny": (lambda d: d.__setitem__("achieved_qps", d["achieved_qps"] * 3),
                                                    "is not 800 requests in"),
    "latencies faster than the samples allow": (_faster_than_measured, "latency_ms.p50"),
    "a zero latency": (lambda d: d["latency_ms"].__setitem__("min", 0.0), "zero or negative"),
}


@pytest.mark.parametrize("case", CONTRADICTIONS, ids=str)
def test_a_self_contradicting_result_never_promotes(case, tmp_path):
    edit, reason = CONTRADICTIONS[case]
    document = result_document(latencies())
    edit(document)
    decision, summary = judged(tmp_path, document)
    assert decision != "PROMOTE"
    assert reason in summary, summary
