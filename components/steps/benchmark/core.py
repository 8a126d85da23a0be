"""The benchmark step's core, called by the CLI, the KFP component and the Hera template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from components.benchmark.core import run_benchmark, run_benchmarks_side_by_side
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
    settings = _settings(url, headers, protocol=protocol, model=model, qps=qps, ramp_to_qps=ramp_to_qps,
                         concurrency=concurrency, duration=duration, count=count, warmup=warmup, timeout=timeout,
                         procs=procs, grpc_channels=grpc_channels, jitter=jitter, keep_samples=keep_samples)
    body = resolve_payload(protocol, model, inline=payload, file=payload_file, sample=sample,
                           input_name=input_name, datatype=datatype)
    return run_benchmark(replace(settings, payload=body), progress)


def run_paired_benchmark_step(candidate_url: str, baseline_url: str, *, candidate_headers: Sequence[str] = (),
                              baseline_headers: Sequence[str] = (), protocol: str = "http", model: str = "",
                              baseline_model: str = "", qps: float | None = None, concurrency: int = 8,
                              duration: float | None = 5.0, warmup: float = 0.0, timeout: float = 3.0,
                              payload: str = "", sample: str = "", keep_samples: bool = True) -> tuple[dict, dict]:
    """Measure the candidate and the baseline at the same time, under the same load and body (`baseline_model`:
    the baseline's model name when its version is a model of its own, as on ModelMesh).

    Run one after the other, the two would see different moments of a shared machine (on 2 cores,
    which one ran first moved p50 by about 20%); side by side, whatever the machine does hits both.
    """
    common = {"protocol": protocol, "qps": qps, "concurrency": concurrency, "duration": duration,
              "warmup": warmup, "timeout": timeout, "keep_samples": keep_samples}
    loads = [replace(_settings(url, headers, model=served, **common),
                     payload=resolve_payload(protocol, served, inline=payload, sample=sample))
             for url, headers, served in ((candidate_url, candidate_headers, model),
                                          (baseline_url, baseline_headers, baseline_model or model))]
    candidate, baseline = run_benchmarks_side_by_side(loads)
    return candidate, baseline


def write_pair(documents: tuple[dict, dict], results: tuple[Path, Path], reports: tuple[Path, Path]) -> None:
    """Write the candidate's and the baseline's result artifacts and HTML reports."""
    from components.benchmark.reporters.html import html_report
    from components.benchmark.result import write_result

    for document, result, report in zip(documents, results, reports, strict=True):
        write_result(document, result)
        report.write_text(html_report(document))


def _settings(url: str, headers: Sequence[str], **fields) -> BenchSettings:
    return BenchSettings(url=url, headers=tuple(parse_header(h) for h in headers), **fields).validated()
