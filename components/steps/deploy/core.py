"""The deploy step's core: put a published version beside the primary as the canary."""

from __future__ import annotations

from dataclasses import dataclass

from components.platform.registry import platform_for


@dataclass(frozen=True)
class Deployment:
    """Where to reach the new version (through the router) and whether a baseline runs beside it."""

    router_url: str
    version: str
    has_baseline: bool


def run_deploy(name: str, storage_uri: str, canary_percent: int = 0, platform: str = "local") -> Deployment:
    """Deploy the version as the canary; requests with `x-meshserve-track: canary` reach it whatever the weight."""
    target = platform_for(platform)
    version = target.deploy(name, storage_uri, canary_percent)
    status = target.status()
    tracks = {v["track"] for v in status["models"][name]}
    return Deployment(status["router"]["http"], version.version, "primary" in tracks)
