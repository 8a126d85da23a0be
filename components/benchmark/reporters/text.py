"""A human summary of a result, in the spirit of fortio's and vegeta's text reports."""

from __future__ import annotations

PERCENTILE_ROWS = (("p50", "50%"), ("p75", "75%"), ("p90", "90%"), ("p95", "95%"), ("p99", "99%"),
                   ("p99_9", "99.9%"))


def text_report(result: dict) -> str:
    """Several lines: target, rates, counts by status and error, latency percentiles."""
    settings, counts, latency = result["settings"], result["counts"], result["latency_ms"]
    requested = result["requested_qps"]
    rate = f"requested {requested:.1f} qps, achieved {result['achieved_qps']:.1f} qps" if requested is not None \
        else f"achieved {result['achieved_qps']:.1f} qps (closed loop, {settings['concurrency']} workers)"
    lines = [
        f"target   {result['target']['protocol']} {result['target']['url']}",
        f"run      {settings['mode']}, {result['measured_seconds']:.2f} s measured, {rate}",
        f"requests {counts['total']} completed of {result['sent']} sent, success {result['success_ratio']:.2%}",
        "status   " + (", ".join(f"{code}: {n}" for code, n in counts["by_status"].items()) or "none"),
    ]
    if counts["by_error"]:
        lines.append("errors   " + ", ".join(f"{kind}: {n}" for kind, n in counts["by_error"].items()))
    lines.append(f"latency  min {latency['min']:.3f}  mean {latency['mean']:.3f}  stddev {latency['stddev']:.3f}  "
                 f"max {latency['max']:.3f} ms")
    lines.append("         " + "  ".join(f"{label} {latency[key]:.3f}" for key, label in PERCENTILE_ROWS) + " ms")
    return "\n".join(lines)
