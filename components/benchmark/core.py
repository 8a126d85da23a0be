"""`run_benchmark`: the plain-Python core of the benchmark step (CLI, KFP and Hera call it)."""

from __future__ import annotations

from components.benchmark.result import merge_partials
from components.benchmark.runner import Progress, run_partials, run_side_by_side
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import build_request
from components.errors import InvalidInputError


def run_benchmark(settings: BenchSettings, progress: Progress | None = None) -> dict:
    """Validate, send the load, and return the result document (see components/contracts)."""
    settings = settings.validated()
    spec = build_request(settings)
    return merge_partials(settings, spec, run_partials(settings, spec, progress))


def run_benchmarks_side_by_side(loads: list[BenchSettings]) -> list[dict]:
    """Send several loads at the same time from one process; one result document each, in order."""
    loads = [settings.validated() for settings in loads]
    if any(settings.procs != 1 for settings in loads):
        raise InvalidInputError("procs", "side-by-side loads share one event loop", "use procs 1")
    specs = [build_request(settings) for settings in loads]
    partials = run_side_by_side(list(zip(loads, specs, strict=True)))
    return [merge_partials(settings, spec, [partial]) for settings, spec, partial in zip(loads, specs, partials,
                                                                                            strict=True)]
