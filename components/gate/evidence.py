"""Benchmark results as the gate sees them: validated against the contract, latencies as a sorted array.

The gate never trusts a result it cannot validate: a missing, unreadable or schema-invalid file is an
EvidenceError, which the decision turns into a failed check (fail closed). Beyond the schema, a result
is refused when
- it is not strict JSON (a duplicate key, NaN, Infinity, a number beyond a float), or not a regular file
  within RESULT_LIMIT bytes, or claims more than MAX_REQUESTS requests;
- its numbers disagree (counts, statuses, samples and histogram; the achieved rate with the count and
  the seconds; the reported latencies with the measured ones);
- its load is not what an open loop asked (a requested rate missing, zero or negative), or its window
  is impossible: no measured time, an end before the start, a span that is not the measured seconds,
  or an end in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from components.contracts import schema_errors
from components.errors import InvalidInputError, MeshserveError
from components.inputs import parse_json, read_bounded

RESULT_LIMIT = 256 << 20  # a result keeps at most a few million raw samples
MAX_REQUESTS = 50_000_000  # more than any bounded load test sends; a histogram's count is checked before use
CLOCK_SKEW_S = 300.0


class EvidenceError(MeshserveError):
    """A benchmark result the gate cannot use."""


@dataclass(frozen=True)
class Evidence:
    """One benchmark result: the document and its latencies in ms, sorted ascending."""

    role: str
    document: dict
    latencies_ms: np.ndarray
    in_order_ms: np.ndarray | None = None  # the raw samples in completion order, when the result kept them

    @property
    def n(self) -> int:
        """Number of measured requests."""
        return int(self.latencies_ms.size)


def load_evidence(path: Path, role: str) -> Evidence:
    """Read and validate a result file; its latencies come from raw samples, else from the HDR histogram."""
    if not Path(path).exists():
        raise EvidenceError(role, f"{path} does not exist", "pass the benchmark step's result file")
    try:
        document = parse_json(read_bounded(Path(path), role, RESULT_LIMIT))
    except InvalidInputError as exc:
        raise EvidenceError(role, exc.problem, "pass the benchmark step's result file") from None
    except ValueError as exc:
        raise EvidenceError(role, f"{path} is not strict JSON ({str(exc)[:120]})",
                            "re-run the benchmark step; a result is never edited by hand") from None
    if not isinstance(document, dict):
        raise EvidenceError(role, f"{path} is not a benchmark result", "pass a meshserve bench --json file")
    errors = schema_errors("benchmark_result", document)
    if errors:
        raise EvidenceError(role, f"{path} breaks the result schema ({errors[0]})", "re-run the benchmark step")
    problems = _shape_problems(document)
    if problems:
        raise EvidenceError(role, f"{path} contradicts itself: {problems[0]}",
                            "re-run the benchmark step; a result is never edited by hand")
    latencies = _latencies_ms(document)
    if latencies.size == 0 or document["counts"]["total"] == 0:
        raise EvidenceError(role, f"{path} holds no measured requests", "benchmark for longer or at a higher rate")
    ordered = np.sort(latencies)
    problems = consistency_problems(document, ordered)
    if problems:
        raise EvidenceError(role, f"{path} contradicts itself: {problems[0]}",
                            "re-run the benchmark step; a result is never edited by hand")
    in_order = latencies if document.get("samples_us") is not None else None
    return Evidence(role, document, ordered, in_order)


OPEN_LOOP_OVERSHOOT = 1.1  # a pacer catching up after a stall runs ahead of its rate for moments, not a window


def _shape_problems(document: dict) -> list[str]:
    """What must hold before the latencies are even expanded: a bounded count that the histogram agrees with,
    a requested rate where an open loop asked one, and a possible measurement window."""
    total = document["counts"]["total"]
    if total > MAX_REQUESTS:
        return [f"a count of {total} requests is more than any bounded load test sends ({MAX_REQUESTS})"]
    held = _histogram_count(document)
    if held is None:
        return ["its histogram data cannot be decoded"]
    if held != total:
        return [f"the histogram holds {held} requests, not {total}"]
    requested, mode = document["requested_qps"], document["settings"]["mode"]
    if mode == "open-loop" and (requested is None or requested <= 0):
        return [f"an open-loop load with requested_qps {requested}"]
    if mode == "closed-loop" and requested is not None:
        return [f"a closed-loop load with requested_qps {requested}"]
    return _window_problems(document)


def _window_problems(document: dict) -> list[str]:
    """The window must be real: measured seconds above 0, start before end, a span of the measured seconds
    (allowing the warm-up and a second of scheduling), and no end in the future."""
    seconds = document["measured_seconds"]
    if not seconds > 0:
        return [f"measured_seconds {seconds}"]
    try:
        started, ended = (_instant(document[key]) for key in ("started_at", "ended_at"))
    except ValueError:
        return ["started_at or ended_at is not an ISO 8601 time with a zone"]
    span = (ended - started).total_seconds()
    if span < 0:
        return [f"ended_at is {-span:.3f} s before started_at"]
    if abs(span - seconds) > 1.0 + 0.05 * seconds:
        return [f"the window spans {span:.3f} s, but measured_seconds is {seconds}"]
    if (ended - datetime.now(UTC)).total_seconds() > CLOCK_SKEW_S:
        return [f"ended_at {document['ended_at']} is in the future"]
    return []


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment


def consistency_problems(document: dict, latencies_ms: np.ndarray) -> list[str]:
    """Where a result's fields disagree (the histogram's count was checked before the latencies were read):
    counts with statuses and the success ratio, samples with the count, the achieved rate with the count and
    the seconds, and the reported latencies with the measured ones (allowing the histogram's precision)."""
    counts = document["counts"]
    total, success = counts["total"], counts["success"]
    problems = []
    if document["sent"] < total:
        problems.append(f"{document['sent']} requests sent, fewer than the {total} measured")
    if sum(counts["by_status"].values()) != total:
        problems.append(f"statuses add up to {sum(counts['by_status'].values())}, not the count {total}")
    if sum(counts["by_error"].values()) != total - success:
        problems.append(f"errors add up to {sum(counts['by_error'].values())}, not {total - success} failures")
    if abs(document["success_ratio"] - success / total) > 1e-6:
        problems.append(f"success_ratio {document['success_ratio']} is not {success}/{total}")
    samples = document.get("samples_us")
    if samples is not None and len(samples) != total:
        problems.append(f"{len(samples)} samples for a count of {total}")
    achieved = total / document["measured_seconds"] if document["measured_seconds"] > 0 else float("inf")
    if abs(document["achieved_qps"] - achieved) > max(0.01 * achieved, 0.01):
        problems.append(f"achieved_qps {document['achieved_qps']} is not {total} requests in "
                        f"{document['measured_seconds']} s")
    requested = document["requested_qps"]
    if document["settings"]["mode"] == "open-loop" and achieved > requested * OPEN_LOOP_OVERSHOOT + 1:
        problems.append(f"an open-loop load paced to {requested} qps cannot have achieved {achieved:.1f} qps")
    return problems + _latency_problems(document["latency_ms"], latencies_ms)


def _latency_problems(reported: dict, measured_ms: np.ndarray) -> list[str]:
    """The reported latencies against the measured requests: the quantiles up to p99 (HDR keeps 3 significant
    digits, so 2%), the mean and the standard deviation."""
    if measured_ms[0] <= 0 or reported["min"] <= 0:
        return ["a latency is zero or negative"]
    keys = ("min", "p50", "p75", "p90", "p95", "p99", "p99_9", "max")
    order = [reported[key] for key in keys if key in reported]
    if order != sorted(order):
        return [f"latency percentiles out of order: {order}"]
    expected = {key: float(np.quantile(measured_ms, quantile)) for key, quantile in
                (("min", 0.0), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99),
                 ("max", 1.0))}  # p99.9 of a few thousand requests lies between two far-apart samples
    expected |= {"mean": float(measured_ms.mean()), "stddev": float(measured_ms.std())}
    problems = []
    for key, value in expected.items():
        if key in reported and abs(reported[key] - value) > 0.02 * value + 0.01:
            problems.append(f"latency_ms.{key} {reported[key]} ms, but the requests measured {value:.3f} ms")
    return problems


def _histogram_count(document: dict) -> int | None:
    """The histogram's own request count; None when its data is damaged (hdrh raises its own, zlib's and
    base64's errors then)."""
    from hdrh.histogram import HdrHistogram

    try:
        return int(HdrHistogram.decode(document["histogram"]["data"].encode("ascii")).get_total_count())
    except Exception:  # noqa: BLE001 - any failure to decode is the same refusal
        return None


def _latencies_ms(document: dict) -> np.ndarray:
    samples = document.get("samples_us")
    if samples is not None and len(samples) == document["counts"]["total"]:
        return np.asarray(samples, dtype=np.float64) / 1000.0
    from hdrh.histogram import HdrHistogram

    histogram = HdrHistogram.decode(document["histogram"]["data"].encode("ascii"))
    values, counts = [], []
    for item in histogram.get_recorded_iterator():
        values.append(item.value_iterated_to / 1000.0)
        counts.append(item.count_added_in_this_iter_step)
    return np.repeat(np.asarray(values, dtype=np.float64), counts)


def check_comparable(candidate: Evidence, baseline: Evidence) -> None:
    """Refuse to compare results measured differently: protocol, request body or load shape."""
    for what, pick in (("protocol", lambda d: d["target"]["protocol"]),
                       ("request body", lambda d: d["target"].get("payload_sha256")),
                       ("load mode", lambda d: d["settings"]["mode"]),
                       ("requested rate", lambda d: d["settings"]["qps"]),
                       ("concurrency", lambda d: d["settings"]["concurrency"])):
        ours, theirs = pick(candidate.document), pick(baseline.document)
        if ours != theirs:
            raise EvidenceError("baseline", f"measured with {what} {theirs!r} but the candidate with {ours!r}",
                                "benchmark candidate and baseline the same way")
