"""Scalar metrics for KFP's `Output[Metrics]`."""

from __future__ import annotations


def scalar_metrics(result: dict) -> dict[str, float]:
    """Flat name → number pairs: rates, success ratio and latency percentiles in ms."""
    metrics = {"achieved_qps": result["achieved_qps"], "success_ratio": result["success_ratio"],
               "requests": float(result["counts"]["total"])}
    if result["requested_qps"] is not None:
        metrics["requested_qps"] = result["requested_qps"]
    metrics.update({f"latency_{key}_ms": value for key, value in result["latency_ms"].items()})
    return metrics
