"""Production-like traffic for the local platform: a bounded, paced load through the router with no track
header, so that a progressive rollout has real requests for its live guard (the router splits them by weight).

It runs as its own process (`start_background_load`), in windows of a few seconds, and appends each window's
counts to a JSON-lines file as it ends, so its figures survive a kill of anything else (the rollout driver,
say) and stopping it early loses at most the window under way. Bounded: at most MAX_SECONDS and MAX_QPS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

MAX_SECONDS = 3600.0
MAX_QPS = 1000.0
WINDOW_S = 5.0


@dataclass(frozen=True)
class TrafficCounts:
    """What the load sent and what failed, over the windows that ended."""

    windows: int
    total: int
    errors: dict[str, int]

    @property
    def failed(self) -> int:
        """Requests that failed (any error kind)."""
        return sum(self.errors.values())


@dataclass
class BackgroundLoad:
    """A running background load: its process and the file its windows go to."""

    process: subprocess.Popen
    counts_file: Path

    def stop(self) -> TrafficCounts:
        """Stop it (the window under way is dropped) and return the counts of the windows that ended."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        return read_counts(self.counts_file)


def start_background_load(url: str, model: str, qps: float, seconds: float, counts_file: Path,
                          sample: str = "digits", protocol: str = "kserve-v1") -> BackgroundLoad:
    """Start the load in its own process (it ends by itself after `seconds`)."""
    from components.errors import InvalidInputError

    if not 0 < qps <= MAX_QPS:
        raise InvalidInputError("qps", f"{qps} is out of range", f"pass 0 < qps <= {MAX_QPS:g}")
    if not 0 < seconds <= MAX_SECONDS:
        raise InvalidInputError("seconds", f"{seconds} is out of range", f"pass 0 < seconds <= {MAX_SECONDS:g}")
    counts_file.parent.mkdir(parents=True, exist_ok=True)
    counts_file.write_text("")
    log = open(counts_file.with_suffix(".log"), "ab")
    process = subprocess.Popen([sys.executable, "-m", "components.benchmark.background", url, model, str(qps),
                                str(seconds), str(counts_file), sample, protocol], stdout=log, stderr=log,
                               start_new_session=True)
    return BackgroundLoad(process, counts_file)


def read_counts(counts_file: Path, since: float = 0.0) -> TrafficCounts:
    """The counts of every window the file holds (that began at or after `since`, epoch seconds)."""
    windows, total, errors = 0, 0, dict[str, int]()
    for line in counts_file.read_text().splitlines() if counts_file.is_file() else []:
        window = json.loads(line)
        if window["started"] < since:
            continue
        windows += 1
        total += window["total"]
        for kind, count in window["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return TrafficCounts(windows, total, errors)


def run_windows(url: str, model: str, qps: float, seconds: float, counts_file: Path, sample: str,
                protocol: str) -> None:
    """Send the load window by window until `seconds` have passed, appending each window's counts."""
    from components.benchmark.core import run_benchmark
    from components.benchmark.payloads import resolve_payload
    from components.benchmark.settings import BenchSettings

    settings = BenchSettings(url=url, protocol=protocol, model=model, qps=qps, concurrency=16, timeout=5.0,
                             keep_samples=False).validated()
    settings = replace(settings, payload=resolve_payload(protocol, model, sample=sample))
    ends = time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0.5:
        started = time.time()
        result = run_benchmark(replace(settings, duration=min(WINDOW_S, left)))
        counts = result["counts"]
        with open(counts_file, "a") as out:
            out.write(json.dumps({"started": started, "total": counts["total"], "errors": counts["by_error"],
                                  "p99_ms": result["latency_ms"]["p99"]}) + "\n")


if __name__ == "__main__":
    run_windows(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5]), sys.argv[6],
                sys.argv[7])
