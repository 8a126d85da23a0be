"""Queries as templates, as Flagger's MetricTemplate writes them: `{{ namespace }}`, `{{ target }}` (the
version's workload) and `{{ interval }}` are filled in per check. The defaults read Istio's standard metrics,
as reported by the destination's sidecar: request success rate (percent of requests not answered 5xx),
a latency quantile in milliseconds, and the request count that tells whether there was traffic at all."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.errors import InvalidInputError

_SELECTOR = ('reporter="destination", destination_workload_namespace="{{ namespace }}", '
             'destination_workload="{{ target }}"')
REQUEST_SUCCESS_RATE = (
    f'sum(rate(istio_requests_total{{{_SELECTOR}, response_code!~"5.*"}}[{{{{ interval }}}}])) / '
    f'sum(rate(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}])) * 100')
REQUEST_COUNT = f'sum(increase(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}]))'
REQUESTS_PER_SECOND = f'sum(rate(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}]))'  # the local HPA's QPS


def request_duration(quantile: float) -> str:
    """The latency quantile (0.99: p99) in milliseconds, from Istio's request duration histogram."""
    return (f"histogram_quantile({quantile}, sum(rate(istio_request_duration_milliseconds_bucket{{{_SELECTOR}}}"
            f"[{{{{ interval }}}}])) by (le))")


DEFAULT_TEMPLATES = {"request-success-rate": REQUEST_SUCCESS_RATE, "request-duration-p99": request_duration(0.99),
                     "request-count": REQUEST_COUNT}
_PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")
_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{1,253}")  # names and durations only: nothing that could end a label value


@dataclass(frozen=True)
class QueryArguments:
    """What a template is filled with: the namespace, the version's workload, and the interval (e.g. 1m)."""

    namespace: str
    target: str
    interval: str = "1m"


def render_query(template: str, arguments: QueryArguments) -> str:
    """The template with its placeholders filled; an unknown placeholder or an unsafe value is an error."""
    values = {"namespace": arguments.namespace, "target": arguments.target, "interval": arguments.interval}
    for name, value in values.items():
        if not _VALUE.fullmatch(value):
            raise InvalidInputError(name, f"{value!r} cannot go into a query", "use a name or a duration such as 1m")

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise InvalidInputError("query", f"unknown placeholder {{{{ {match.group(1)} }}}}",
                                    f"use {', '.join('{{ ' + name + ' }}' for name in values)}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, template)
