"""Benchmark results as the gate sees them: validated against the contract, latencies as a sorted array.

The gate never trusts a result it cannot validate: a missing, unreadable or schema-invalid file is an
EvidenceError, which the decision turns into a failed check (fail closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.contracts import schema_errors
from components.errors import MeshserveError


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
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EvidenceError(role, f"{path} does not exist", "pass the benchmark step's result file") from None
    except (OSError, ValueError) as exc:
        raise EvidenceError(role, f"{path} is not readable JSON ({type(exc).__name__})",
                            "re-run the benchmark step") from None
    if not isinstance(document, dict):
        raise EvidenceError(role, f"{path} is not a benchmark result", "pass a meshserve bench --json file")
    errors = schema_errors("benchmark_result", document)
    if errors:
        raise EvidenceError(role, f"{path} breaks the result schema ({errors[0]})", "re-run the benchmark step")
    latencies = _latencies_ms(document)
    if latencies.size == 0 or document["counts"]["total"] == 0:
        raise EvidenceError(role, f"{path} holds no measured requests", "benchmark for longer or at a higher rate")
    problems = consistency_problems(document, np.sort(latencies))
    if problems:
        raise EvidenceError(role, f"{path} contradicts itself: {problems[0]}",
                            "re-run the benchmark step; a result is never edited by hand")
    in_order = latencies if document.get("samples_us") is not None else None
    return Evidence(role, document, np.sort(latencies), in_order)


def consistency_problems(document: dict, latencies_ms: np.ndarray) -> list[str]:
    """Where a result's fields disagree: counts with statuses and the success ratio, samples with the count
    and the histogram, the achieved rate with the count and the seconds, and the reported latencies with the
    measured ones (allowing the histogram's precision)."""
    counts = document["counts"]
    total, success = counts["total"], counts["success"]
    problems = []
    if sum(counts["by_status"].values()) != total:
        problems.append(f"statuses add up to {sum(counts['by_status'].values())}, not the count {total}")
    if sum(counts["by_error"].values()) != total - success:
        problems.append(f"errors add up to {sum(counts['by_error'].values())}, not {total - success} failures")
    if abs(document["success_ratio"] - success / total) > 1e-6:
        problems.append(f"success_ratio {document['success_ratio']} is not {success}/{total}")
    samples = document.get("samples_us")
    if samples is not None and len(samples) != total:
        problems.append(f"{len(samples)} samples for a count of {total}")
    if _histogram_count(document) != total:
        problems.append(f"the histogram holds {_histogram_count(document)} requests, not {total}")
    achieved = total / document["measured_seconds"] if document["measured_seconds"] > 0 else float("inf")
    if abs(document["achieved_qps"] - achieved) > max(0.01 * achieved, 0.01):
        problems.append(f"achieved_qps {document['achieved_qps']} is not {total} requests in "
                        f"{document['measured_seconds']} s")
    return problems + _latency_problems(document["latency_ms"], latencies_ms)


def _latency_problems(reported: dict, measured_ms: np.ndarray) -> list[str]:
    if measured_ms[0] <= 0 or reported["min"] <= 0:
        return ["a latency is zero or negative"]
    order = [reported[key] for key in ("min", "p50", "p90", "p99", "max")]
    if order != sorted(order):
        return [f"latency percentiles out of order: {order}"]
    problems = []
    for key, quantile in (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        value = float(np.quantile(measured_ms, quantile))
        if abs(reported[key] - value) > 0.02 * value + 0.01:  # HDR keeps 3 significant digits
            problems.append(f"latency_ms.{key} {reported[key]} ms, but the requests measured {value:.3f} ms")
    return problems


def _histogram_count(document: dict) -> int:
    from hdrh.histogram import HdrHistogram

    return int(HdrHistogram.decode(document["histogram"]["data"].encode("ascii")).get_total_count())


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
