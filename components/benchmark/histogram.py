"""Latency histograms: HdrHistogram in microseconds (1 µs to 1 h, 3 significant digits).

Each process records into its own histogram; the encoded form travels between processes and into
the result, and histograms merge exactly.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
ENCODING = "hdrhistogram-v2-deflate-base64"
PERCENTILES = (("p50", 50.0), ("p75", 75.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99_9", 99.9))


class LatencyHistogram:
    """Records latencies given in seconds; summarises them in milliseconds."""

    def __init__(self, histogram: HdrHistogram | None = None):
        self.hdr = histogram or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

    def record(self, seconds: float) -> None:
        """Add one latency (clamped into the trackable range)."""
        self.hdr.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))

    @property
    def count(self) -> int:
        """How many latencies were recorded."""
        return self.hdr.get_total_count()

    def merge(self, other: LatencyHistogram) -> None:
        """Add every count of `other` into this histogram."""
        self.hdr.add(other.hdr)

    def encode(self) -> str:
        """The standard compressed, base64 HdrHistogram encoding."""
        return self.hdr.encode().decode("ascii")

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        """Rebuild a histogram from `encode()`'s output."""
        return cls(HdrHistogram.decode(encoded.encode("ascii")))

    def summary_ms(self) -> dict[str, float]:
        """min, mean, stddev, the standard percentiles and max, in milliseconds (all 0 when empty)."""
        if self.count == 0:
            return {key: 0.0 for key in ("min", "mean", "stddev", *(k for k, _ in PERCENTILES), "max")}
        summary = {"min": self.hdr.get_min_value() / 1000, "mean": self.hdr.get_mean_value() / 1000,
                   "stddev": self.hdr.get_stddev() / 1000}
        for key, percentile in PERCENTILES:
            summary[key] = self.hdr.get_value_at_percentile(percentile) / 1000
        summary["max"] = self.hdr.get_max_value() / 1000
        return {key: round(value, 4) for key, value in summary.items()}

    def percentile_curve_ms(self) -> list[tuple[float, float]]:
        """(percentile, latency ms) points log-spaced towards the tail, from p0 to p99.999, for plots."""
        percentiles = [100 * (1 - 10 ** (-step / 20)) for step in range(101)]
        return [(p, self.hdr.get_value_at_percentile(p) / 1000) for p in percentiles]
