"""Benchmark result documents from latency arrays, built with the benchmark's own result code."""

from __future__ import annotations

import numpy as np

from components.benchmark.histogram import LatencyHistogram
from components.benchmark.result import merge_partials
from components.benchmark.runner import PartialResult
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import build_request


def result_document(latencies_ms, qps: float = 100.0, errors: int = 0, protocol: str = "kserve-v1",
                    payload: bytes = b'{"instances": [[1, 2, 3, 4]]}', achieved_factor: float = 1.0,
                    keep_samples: bool = True) -> dict:
    """A valid result as `meshserve bench` would write it for these latencies (first `errors` failed)."""
    latencies_s = np.asarray(latencies_ms, dtype=float) / 1000
    histogram = LatencyHistogram()
    for value in latencies_s:
        histogram.record(float(value))
    total = latencies_s.size
    statuses = {"200": total - errors, **({"503": errors} if errors else {})}
    duration = total / qps
    partial = PartialResult(histogram.encode(), statuses, {"server_error": errors} if errors else {},
                            [round(v * 1e6) for v in latencies_s], total, 1000.0, 1000.0 + duration / achieved_factor)
    settings = BenchSettings(url="http://127.0.0.1:8080", protocol=protocol, model="m", qps=qps, duration=duration,
                             payload=payload, keep_samples=keep_samples)
    return merge_partials(settings, build_request(settings), [partial])
