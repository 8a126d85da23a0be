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
    "a count of 0": (lambda d: d["counts"].__setitem__("total", 0), "the histogram holds 800 requests, not 0"),
    "samples that contradict the histogram": (_samples_of_other_requests, "but the requests measured"),
    "a histogram of other requests": (_histogram_of_other_requests, "the histogram holds 600 requests, not 800"),
    "samples fewer than the count": (lambda d: d.__setitem__("samples_us", d["samples_us"][:100]),
                                     "100 samples for a count of 800"),
    "an achieved rate the count and seconds deny": (lambda d: d.__setitem__("achieved_qps", d["achieved_qps"] * 3),
                                                    "is not 800 requests in"),
    "latencies faster than the samples allow": (_faster_than_measured, "latency_ms.p50"),
    "a zero latency": (lambda d: d["latency_ms"].__setitem__("min", 0.0), "zero or negative"),
    # forged or broken evidence (issue 18): every number finite and in range, the window possible
    "requested_qps null in an open loop": (lambda d: d.__setitem__("requested_qps", None),
                                           "an open-loop load with requested_qps None"),
    "requested_qps 0": (lambda d: d.__setitem__("requested_qps", 0), "breaks the result schema"),
    "requested_qps negative": (lambda d: d.__setitem__("requested_qps", -5.0), "breaks the result schema"),
    "requested_qps -1e999": (lambda d: d.__setitem__("requested_qps", float("-inf")), "is not strict JSON"),
    "measured_seconds 0": (lambda d: d.__setitem__("measured_seconds", 0), "breaks the result schema"),
    "measured_seconds NaN": (lambda d: d.__setitem__("measured_seconds", float("nan")), "is not strict JSON"),
    "achieved_qps NaN": (lambda d: d.__setitem__("achieved_qps", float("nan")), "is not strict JSON"),
    "a NaN latency": (lambda d: d["latency_ms"].__setitem__("p99", float("nan")), "is not strict JSON"),
    "started_at after ended_at": (lambda d: d.update(started_at=d["ended_at"], ended_at=d["started_at"]),
                                  "before started_at"),
    "started_at a day earlier": (lambda d: d.__setitem__("started_at", "1969-12-31T00:16:40.000000+00:00"),
                                 "but measured_seconds is"),
    "a window ending tomorrow": (lambda d: d.update(started_at="2999-01-01T00:00:00.000000+00:00",
                                                    ended_at="2999-01-01T00:00:08.000000+00:00"), "is in the future"),
    "a window without a zone": (lambda d: d.__setitem__("ended_at", d["ended_at"][:-6]), "with a zone"),
    "fewer requests sent than measured": (lambda d: d.__setitem__("sent", 10), "10 requests sent, fewer than the 800"),
    "a count of 2**40": (lambda d: d["counts"].update(total=2**40, success=2**40), "more than any bounded"),
}


@pytest.mark.parametrize("case", CONTRADICTIONS, ids=str)
def test_a_self_contradicting_result_never_promotes(case, tmp_path):
    edit, reason = CONTRADICTIONS[case]
    document = result_document(latencies())
    edit(document)
    decision, summary = judged(tmp_path, document)
    assert decision != "PROMOTE"
    assert reason in summary, summary


def test_duplicate_keys_never_promote(tmp_path):
    text = json.dumps(result_document(latencies()))
    forged = text.replace('"success_ratio": ', '"success_ratio": 1.0, "success_ratio": ', 1)
    path = tmp_path / "candidate.json"
    path.write_text(forged)
    verdict = run_gate(path, None, POLICY).verdict
    assert verdict.decision != "PROMOTE" and "duplicate key 'success_ratio'" in verdict.summary()


OPTIONAL = {"samples_us"}  # without raw samples, the latencies come from the histogram
DECISIVE = {"schema", "started_at", "ended_at", "measured_seconds", "requested_qps", "achieved_qps", "counts",
            "success_ratio", "latency_ms", "histogram", "samples_us"}


def _forgeries():
    """Edits of a valid result: a field dropped, duplicated (in the JSON text), or set to a hostile value."""
    from hypothesis import strategies as st

    document = result_document(latencies())
    paths = [(key,) for key in document] + [(outer, inner) for outer in ("counts", "latency_ms", "settings")
                                             for inner in document[outer]]
    hostile = st.one_of(st.sampled_from([float("nan"), float("inf"), float("-inf"), -1e308, 1e308, 0, -1, None,
                                         "", "x", [], {}, True, 2**63]),
                        st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=8))
    return st.tuples(st.sampled_from(paths), st.sampled_from(["drop", "set", "duplicate"]), hostile)


def test_no_forgery_of_a_result_promotes(tmp_path):
    """Fuzz: hypothesis edits one field of a promoting result (drops it, duplicates it with another value, or
    sets it to NaN, an infinity, a huge or negative number, a wrong type) and the gate must never promote
    unless the edit left every field the decision reads as it was (an optional field dropped, a descriptive
    field such as the tool's version changed)."""
    from hypothesis import HealthCheck, given, settings

    original = result_document(latencies())

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_forgeries())
    def check(forgery):
        path_keys, action, value = forgery
        document = json.loads(json.dumps(original))
        holder = document
        for key in path_keys[:-1]:
            holder = holder[key]
        last = path_keys[-1]
        text = None
        if action == "drop":
            holder.pop(last)
        elif action == "set":
            holder[last] = value
        else:
            text = json.dumps(document).replace(f'"{last}": ', f'"{last}": {json.dumps(value)}, "{last}": ', 1)
        file = tmp_path / "forged.json"
        file.write_text(text if text is not None else json.dumps(document))
        verdict = run_gate(file, None, POLICY).verdict
        harmless = action == "drop" and last in OPTIONAL or action == "set" and (
            path_keys[0] not in DECISIVE or _same(holder.get(last), _at(original, path_keys)))
        assert verdict.decision != "PROMOTE" or harmless, (path_keys, action, value, verdict.summary())

    check()


def _at(document, keys):
    for key in keys:
        document = document[key]
    return document


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and not isinstance(a, bool)
                                             and isinstance(b, (int, float)) and not isinstance(b, bool) and a == b)
