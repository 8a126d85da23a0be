"""The benchmark step as a Hera script template."""

from pathlib import Path
from typing import Annotated

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="benchmark")
def benchmark(
    url: str,
    result: Annotated[Path, Artifact(name="result", output=True)],
    report: Annotated[Path, Artifact(name="report", output=True)],
    success_ratio: Annotated[Path, Parameter(name="success-ratio", output=True)],
    p99_ms: Annotated[Path, Parameter(name="p99-ms", output=True)],
    protocol: str = "http",
    model: str = "",
    qps: float = 0.0,
    concurrency: int = 8,
    duration_s: float = 30.0,
    warmup_s: float = 0.0,
    timeout_s: float = 3.0,
    headers: list[str] = [],  # noqa: B006 (a literal default for the template's input)
    sample: str = "",
    payload: str = "",
    procs: int = 1,
) -> None:
    """Load-test an endpoint; writes the result artifact, an HTML report and two headline figures."""
    from components.benchmark.reporters.html import html_report
    from components.benchmark.result import write_result
    from components.steps.benchmark.core import run_benchmark_step
    from components.steps.errors import step_errors

    with step_errors("benchmark"):
        document = run_benchmark_step(url, protocol=protocol, model=model, qps=qps or None, concurrency=concurrency,
                                      duration=duration_s, warmup=warmup_s, timeout=timeout_s, headers=headers,
                                      sample=sample, payload=payload, procs=procs)
        write_result(document, result)
        report.write_text(html_report(document))
        success_ratio.write_text(str(document["success_ratio"]))
        p99_ms.write_text(str(document["latency_ms"]["p99"]))


@script(constructor="runner", image=STEP_IMAGE, name="benchmark-pair")
def benchmark_pair(
    candidate_url: str,
    baseline_url: str,
    candidate_result: Annotated[Path, Artifact(name="candidate-result", output=True)],
    baseline_result: Annotated[Path, Artifact(name="baseline-result", output=True)],
    candidate_report: Annotated[Path, Artifact(name="candidate-report", output=True)],
    baseline_report: Annotated[Path, Artifact(name="baseline-report", output=True)],
    candidate_headers: list[str] = [],  # noqa: B006 (a literal default for the template's input)
    baseline_headers: list[str] = [],  # noqa: B006
    protocol: str = "http",
    model: str = "",
    qps: float = 0.0,
    concurrency: int = 8,
    duration_s: float = 30.0,
    warmup_s: float = 0.0,
    timeout_s: float = 3.0,
    sample: str = "",
    payload: str = "",
) -> None:
    """Load-test the candidate and the baseline at the same time, under the same load: one result each."""
    from components.steps.benchmark.core import run_paired_benchmark_step, write_pair
    from components.steps.errors import step_errors

    with step_errors("benchmark-pair"):
        documents = run_paired_benchmark_step(
            candidate_url, baseline_url, candidate_headers=candidate_headers, baseline_headers=baseline_headers,
            protocol=protocol, model=model, qps=qps or None, concurrency=concurrency, duration=duration_s,
            warmup=warmup_s, timeout=timeout_s, sample=sample, payload=payload)
        write_pair(documents, (candidate_result, baseline_result), (candidate_report, baseline_report))
