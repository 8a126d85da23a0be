"""The benchmark result: partial results merged into the versioned artifact the gate reads.

The artifact's shape is the contract `components/contracts/benchmark_result.schema.json`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from components import __version__
from components.benchmark.histogram import ENCODING, LatencyHistogram
from components.benchmark.pacer import pacer_for
from components.benchmark.runner import PartialResult
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import RequestSpec
from components.contracts import BENCHMARK_RESULT_SCHEMA
from components.redaction import public_url


def merge_partials(settings: BenchSettings, spec: RequestSpec, partials: list[PartialResult]) -> dict:
    """One result document from every process's partial result."""
    histogram = LatencyHistogram()
    by_status: Counter = Counter()
    by_error: Counter = Counter()
    samples: list[int] = []
    for part in partials:
        histogram.merge(LatencyHistogram.decode(part.histogram))
        by_status.update(part.by_status)
        by_error.update(part.by_error)
        samples.extend(part.samples_us)
    started = min(p.measured_from for p in partials)
    ended = max(p.last_done for p in partials)
    measured = max(ended - started, 1e-9)
    total = histogram.count
    success = total - sum(by_error.values())
    document = {
        "schema": BENCHMARK_RESULT_SCHEMA,
        "tool": {"name": "meshserve-bench", "version": __version__},
        "target": {"url": public_url(spec.address), "protocol": spec.protocol, "model": settings.model,
                   "headers": settings.public_headers(), "payload_sha256": hashlib.sha256(spec.body).hexdigest(),
                   "payload_bytes": len(spec.body)},
        "settings": _settings_record(settings),
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "measured_seconds": round(measured, 6),
        "requested_qps": _requested_qps(settings),
        "achieved_qps": round(total / measured, 3) if total else 0.0,
        "sent": sum(p.sent for p in partials),
        "counts": {"total": total, "success": success, "by_status": dict(sorted(by_status.items())),
                   "by_error": dict(sorted(by_error.items()))},
        "success_ratio": round(success / total, 6) if total else 0.0,
        "latency_ms": histogram.summary_ms(),
        "histogram": {"encoding": ENCODING, "unit": "us", "data": histogram.encode()},
    }
    if settings.keep_samples:
        document["samples_us"] = samples
    return document


def _settings_record(settings: BenchSettings) -> dict:
    return {"mode": "open-loop" if settings.open_loop else "closed-loop", "qps": settings.qps,
            "ramp_to_qps": settings.ramp_to_qps, "concurrency": settings.concurrency,
            "duration_s": settings.duration, "count": settings.count, "warmup_s": settings.warmup,
            "timeout_s": settings.timeout, "procs": settings.procs, "grpc_channels": settings.grpc_channels,
            "jitter": settings.jitter}


def _requested_qps(settings: BenchSettings) -> float | None:
    """The mean requested rate over the measured window (for a ramp, the window's share of it)."""
    if settings.qps is None:
        return None
    if settings.duration is None:
        return settings.qps if settings.ramp_to_qps is None else None
    pacer = pacer_for(settings.qps, settings.ramp_to_qps, settings.bound_seconds(), False, 0)
    due = pacer.hits_until(settings.warmup + settings.duration) - pacer.hits_until(settings.warmup)
    return round(due / settings.duration, 3)


def _iso(wall_seconds: float) -> str:
    return datetime.fromtimestamp(wall_seconds, UTC).isoformat(timespec="microseconds")


def write_result(document: dict, path: Path) -> None:
    """Write the result artifact as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=1) + "\n")


def merge_windows(documents: list[dict]) -> dict:
    """One result document for consecutive windows measured with the same settings and target.

    Counts and histograms add exactly, samples are concatenated in time order, and the achieved rate is
    the total over the measured seconds of all windows (the pauses between windows are not measured).
    """
    first, last = documents[0], documents[-1]
    histogram = LatencyHistogram()
    by_status: Counter = Counter()
    by_error: Counter = Counter()
    for document in documents:
        histogram.merge(LatencyHistogram.decode(document["histogram"]["data"]))
        by_status.update(document["counts"]["by_status"])
        by_error.update(document["counts"]["by_error"])
    total = histogram.count
    measured = sum(document["measured_seconds"] for document in documents)
    requested = [document["requested_qps"] for document in documents]
    merged = {**first, "ended_at": last["ended_at"], "measured_seconds": round(measured, 6),
              "requested_qps": None if None in requested else round(sum(requested) / len(requested), 3),
              "achieved_qps": round(total / max(measured, 1e-9), 3) if total else 0.0,
              "sent": sum(document["sent"] for document in documents),
              "counts": {"total": total, "success": total - sum(by_error.values()),
                         "by_status": dict(sorted(by_status.items())), "by_error": dict(sorted(by_error.items()))},
              "success_ratio": round((total - sum(by_error.values())) / total, 6) if total else 0.0,
              "latency_ms": histogram.summary_ms(),
              "histogram": {"encoding": ENCODING, "unit": "us", "data": histogram.encode()},
              "settings": {**first["settings"], "duration_s": round(measured, 6)}}
    if all("samples_us" in document for document in documents):
        merged["samples_us"] = [value for document in documents for value in document["samples_us"]]
    return merged
