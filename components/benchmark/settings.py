"""A benchmark run's settings, validated before a single request is sent."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from components.errors import InvalidInputError
from components.inputs import clipped
from components.redaction import SAFE_HEADERS, public_headers, register_secret

PROTOCOLS = ("http", "kserve-v1", "v2-rest", "v2-grpc", "tfserving-rest", "tfserving-grpc")
GRPC_PROTOCOLS = ("v2-grpc", "tfserving-grpc")
# No run may last longer than this, whatever -t and -n say.
MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class BenchSettings:
    """What to send where, how fast, and for how long.

    `qps=None` is a closed loop at full speed with `concurrency` workers; a rate makes it open-loop,
    each request timed from its intended send time. The run ends at `duration` or after `count`
    measured requests, whichever comes first; the warm-up is sent before and not measured.
    """

    url: str
    protocol: str = "http"
    model: str = ""
    qps: float | None = None
    ramp_to_qps: float | None = None
    concurrency: int = 8
    duration: float | None = 5.0
    count: int | None = None
    warmup: float = 0.0
    timeout: float = 3.0
    headers: tuple[tuple[str, str], ...] = ()
    payload: bytes = b""
    method: str = ""
    procs: int = 1
    grpc_channels: int = 1
    jitter: bool = False
    keep_samples: bool = True
    seed: int = 0

    @property
    def open_loop(self) -> bool:
        """True when requests are paced at a rate rather than sent back to back."""
        return self.qps is not None

    def validated(self) -> BenchSettings:
        """Return these settings if they describe a bounded, well-formed run; else raise naming the flag."""
        if self.protocol not in PROTOCOLS:
            raise InvalidInputError("protocol", f"unknown protocol {self.protocol!r}",
                                    f"use one of {', '.join(PROTOCOLS)}")
        _positive("qps", self.qps, "pass -qps above 0, or omit it for a closed loop at full speed")
        _positive("ramp_to_qps", self.ramp_to_qps, "pass a final rate above 0")
        if self.ramp_to_qps is not None and self.qps is None:
            raise InvalidInputError("ramp_to_qps", "a ramp needs a starting rate", "pass -qps too")
        _positive("duration", self.duration, "pass -t with a positive duration such as 10s")
        _positive("timeout", self.timeout, "pass -timeout with a positive duration such as 3s")
        if self.warmup < 0 or not math.isfinite(self.warmup):
            raise InvalidInputError("warmup", f"must be 0 or more (got {self.warmup})", "pass --warmup 2s or 0")
        for name in ("concurrency", "procs", "grpc_channels"):
            if getattr(self, name) < 1:
                raise InvalidInputError(name, f"must be at least 1 (got {getattr(self, name)})", "pass 1 or more")
        if self.count is not None and self.count < 1:
            raise InvalidInputError("count", f"must be at least 1 (got {self.count})", "pass -n 1 or more")
        if self.duration is None and self.count is None:
            raise InvalidInputError("duration", "the run would be unbounded", "pass -t DURATION or -n COUNT")
        if self.bound_seconds() > MAX_DURATION_S:
            raise InvalidInputError("duration", f"the run could last {self.bound_seconds():.0f} s, over the "
                                    f"{MAX_DURATION_S:.0f} s limit", "pass a shorter -t or a smaller -n")
        if self.protocol in GRPC_PROTOCOLS + ("kserve-v1", "v2-rest", "tfserving-rest") and not self.model:
            raise InvalidInputError("model", f"{self.protocol} needs the model name", "pass --model NAME")
        return self

    def bound_seconds(self) -> float:
        """The longest this run can take: warm-up plus duration (count-only runs are capped by the limit)."""
        if self.duration is not None:
            return self.warmup + self.duration
        if self.qps is not None and self.count is not None:
            return self.warmup + self.count / self.qps
        return MAX_DURATION_S

    def split(self, parts: int) -> list[BenchSettings]:
        """Per-process settings for `parts` processes: rates, workers and counts divided between them."""
        def share(total: int | None, index: int) -> int | None:
            return None if total is None else total // parts + (1 if index < total % parts else 0)

        return [
            replace(self, procs=1,
                    qps=None if self.qps is None else self.qps / parts,
                    ramp_to_qps=None if self.ramp_to_qps is None else self.ramp_to_qps / parts,
                    concurrency=max(1, self.concurrency // parts + (1 if index < self.concurrency % parts else 0)),
                    count=share(self.count, index), seed=self.seed + index)
            for index in range(parts)
        ]

    def public_headers(self) -> dict[str, str]:
        """Headers as recorded in results: every value not known to be safe redacted (components.redaction)."""
        return public_headers(self.headers)


def _positive(name: str, value: float | None, fix: str) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise InvalidInputError(name, f"must be above 0 (got {value})", fix)


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' → (name, value); anything else is an error naming -H (never quoting the value: it may be a
    credential). A control character anywhere (a newline would inject a header) is refused."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise InvalidInputError("H", "a header is not 'Name: value'", "use -H 'Name: value'")
    if any(not c.isprintable() for c in text):
        raise InvalidInputError("H", f"header {clipped(name.strip(), 40)} holds a newline or control character",
                                "pass one header per -H, on one line")
    if name.strip().lower() not in SAFE_HEADERS:
        register_secret(value.strip())
    return name.strip(), value.strip()


def parse_duration(text: str, field_name: str) -> float:
    """'10s', '1.5m', '250ms', '2h' or a bare number of seconds → seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], units[suffix]
            break
    else:
        number, scale = text, 1.0
    try:
        return float(number) * scale
    except ValueError:
        raise InvalidInputError(field_name, f"{text!r} is not a duration", "use a number with ms, s, m or h") from None
