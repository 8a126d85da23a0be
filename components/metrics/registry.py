"""Metrics provider names to implementations; an unknown name is an error, never a fallback."""

from __future__ import annotations

from components.errors import InvalidInputError
from components.metrics.prometheus import PrometheusProvider
from components.metrics.provider import MetricsProvider

PROVIDERS = ("prometheus",)


def metrics_provider_for(kind: str, address: str) -> MetricsProvider:
    """The provider registered under `kind`, reaching the server at `address` (http(s)://HOST:PORT)."""
    if kind == "prometheus":
        if not address.startswith(("http://", "https://")):
            raise InvalidInputError("address", f"{address!r} is not an http(s) URL", "pass http(s)://HOST:PORT")
        return PrometheusProvider(address)
    raise InvalidInputError("provider", f"unknown metrics provider {kind!r}", f"use one of {', '.join(PROVIDERS)}")
