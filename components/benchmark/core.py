"""`run_benchmark`: the plain-Python core of the benchmark step (CLI, KFP and Hera call it)."""

from __future__ import annotations

from components.benchmark.result import merge_partials
from components.benchmark.runner import Progress, run_partials
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import build_request


def run_benchmark(settings: BenchSettings, progress: Progress | None = None) -> dict:
    """Validate, send the load, and return the result document (see components/contracts)."""
    settings = settings.validated()
    spec = build_request(settings)
    return merge_partials(settings, spec, run_partials(settings, spec, progress))
