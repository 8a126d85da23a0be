"""Prometheus as a metrics provider: an instant query over its HTTP API (`/api/v1/query`), bounded in time
and in the size of its answer. The answer must be Prometheus's own shape (`status: success`, a vector with at
most one sample, or a scalar); anything else is a malformed answer, never a value."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from components.metrics.provider import MALFORMED, NO_DATA, OK, UNREACHABLE, Measurement

ANSWER_LIMIT = 1 << 20


class PrometheusProvider:
    """Instant queries against one Prometheus server."""

    kind = "prometheus"

    def __init__(self, address: str, timeout_s: float = 10.0):
        self.address = address.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, text: str) -> Measurement:
        """The query's single value now, or why there is none."""
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": text})
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                raw = response.read(ANSWER_LIMIT + 1)
        except urllib.error.HTTPError as exc:
            return _answer(exc.read(ANSWER_LIMIT + 1), f"Prometheus answered {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Measurement(UNREACHABLE, detail=f"cannot reach Prometheus at {self.address} "
                                                   f"({getattr(exc, 'reason', exc)})")
        return _answer(raw, "")


def _answer(raw: bytes, status: str) -> Measurement:
    """A Prometheus API answer read strictly."""
    if len(raw) > ANSWER_LIMIT:
        return Measurement(MALFORMED, detail=f"an answer over {ANSWER_LIMIT} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return Measurement(MALFORMED, detail=f"{status or 'an answer'} that is not JSON")
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "") if isinstance(body, dict) else ""
        return Measurement(MALFORMED, detail=f"{status or 'a failed query'}: {str(error)[:200] or 'no status'}")
    data = body.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _sample(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return Measurement(NO_DATA, detail="the query matched no series")
        if len(result) > 1 or not isinstance(result[0], dict) or not isinstance(result[0].get("value"), list):
            return Measurement(MALFORMED, detail=f"{len(result)} series where one value was asked for")
        return _sample(result[0]["value"][1] if len(result[0]["value"]) == 2 else None)
    return Measurement(MALFORMED, detail=f"a {kind or 'shapeless'} result where a vector or scalar was asked for")


def _sample(text: object) -> Measurement:
    """A sample's value (Prometheus writes it as a string); NaN (0/0: no requests) is no data."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Measurement(MALFORMED, detail=f"a sample value {str(text)[:40]!r} that is not a number")
    if math.isnan(value):
        return Measurement(NO_DATA, detail="the value is NaN (no requests in the interval)")
    return Measurement(OK, value)
