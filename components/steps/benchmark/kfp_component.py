"""The benchmark step as a KFP v2 component: result artifact, KFP metrics and an HTML report."""


from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def benchmark(
    url: str,
    result: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
    protocol: str = "http",
    model: str = "",
    qps: float = 0.0,
    concurrency: int = 8,
    duration_s: float = 30.0,
    warmup_s: float = 0.0,
    timeout_s: float = 3.0,
    headers: list[str] = [],  # noqa: B006 (KFP needs a literal default)
    sample: str = "",
    payload: str = "",
    procs: int = 1,
):
    """Load-test an endpoint; qps 0 means a closed loop at full speed with `concurrency` workers."""
    from pathlib import Path

    from components.benchmark.reporters.html import html_report
    from components.benchmark.reporters.kfp_metrics import scalar_metrics
    from components.benchmark.result import write_result
    from components.steps.benchmark.core import run_benchmark_step
    from components.steps.errors import step_errors

    with step_errors("benchmark"):
        document = run_benchmark_step(url, protocol=protocol, model=model, qps=qps or None, concurrency=concurrency,
                                      duration=duration_s, warmup=warmup_s, timeout=timeout_s, headers=headers,
                                      sample=sample, payload=payload, procs=procs)
        write_result(document, Path(result.path))
        for name, value in scalar_metrics(document).items():
            metrics.log_metric(name, value)
        Path(report.path).write_text(html_report(document))
        result.metadata.update({"schema": document["schema"], "protocol": protocol, "url": document["target"]["url"]})


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def benchmark_pair(
    candidate_url: str,
    baseline_url: str,
    candidate_result: Output[Artifact],
    baseline_result: Output[Artifact],
    metrics: Output[Metrics],
    candidate_report: Output[HTML],
    baseline_report: Output[HTML],
    candidate_headers: list[str] = [],  # noqa: B006 (KFP needs a literal default)
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
):
    """Load-test the candidate and the baseline at the same time, under the same load: one result each."""
    from pathlib import Path

    from components.benchmark.reporters.kfp_metrics import scalar_metrics
    from components.steps.benchmark.core import run_paired_benchmark_step, write_pair
    from components.steps.errors import step_errors

    with step_errors("benchmark-pair"):
        documents = run_paired_benchmark_step(
            candidate_url, baseline_url, candidate_headers=candidate_headers, baseline_headers=baseline_headers,
            protocol=protocol, model=model, qps=qps or None, concurrency=concurrency, duration=duration_s,
            warmup=warmup_s, timeout=timeout_s, sample=sample, payload=payload)
        write_pair(documents, (Path(candidate_result.path), Path(baseline_result.path)),
                   (Path(candidate_report.path), Path(baseline_report.path)))
        for role, document, result in (("candidate", documents[0], candidate_result),
                                       ("baseline", documents[1], baseline_result)):
            result.metadata.update({"schema": document["schema"], "protocol": protocol,
                                    "url": document["target"]["url"]})
            for name, value in scalar_metrics(document).items():
                metrics.log_metric(f"{role}_{name}", value)
