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
    if latencies.size == 0:
        raise EvidenceError(role, f"{path} holds no measured requests", "benchmark for longer or at a higher rate")
    return Evidence(role, document, np.sort(latencies))


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
