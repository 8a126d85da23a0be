"""The benchmark step's core, called by the CLI, the KFP component and the Hera template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from components.benchmark.core import run_benchmark
from components.benchmark.payloads import resolve_payload
from components.benchmark.runner import Progress
from components.benchmark.settings import BenchSettings, parse_header


def run_benchmark_step(url: str, *, protocol: str = "http", model: str = "", qps: float | None = None,
                       ramp_to_qps: float | None = None, concurrency: int = 8, duration: float | None = 5.0,
                       count: int | None = None, warmup: float = 0.0, timeout: float = 3.0,
                       headers: Sequence[str] = (), payload: str = "", payload_file: str = "", sample: str = "",
                       input_name: str = "", datatype: str = "FP32", procs: int = 1, grpc_channels: int = 1,
                       jitter: bool = False, keep_samples: bool = True,
                       progress: Progress | None = None) -> dict:
    """Measure an endpoint and return the result document; bad settings fail before any load is sent."""
    settings = BenchSettings(
        url=url, protocol=protocol, model=model, qps=qps, ramp_to_qps=ramp_to_qps, concurrency=concurrency,
        duration=duration, count=count, warmup=warmup, timeout=timeout,
        headers=tuple(parse_header(h) for h in headers), procs=procs, grpc_channels=grpc_channels,
        jitter=jitter, keep_samples=keep_samples,
    ).validated()
    body = resolve_payload(protocol, model, inline=payload, file=payload_file, sample=sample,
                           input_name=input_name, datatype=datatype)
    return run_benchmark(replace(settings, payload=body), progress)
