"""The deploy step's core: put a published version beside the primary as the canary."""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.platform.registry import platform_for


@dataclass(frozen=True)
class Deployment:
    """Where to reach the new version (through the router), and the baseline beside it, if any."""

    router_url: str
    version: str
    baseline_storage_uri: str  # "" on a first deploy

    @property
    def has_baseline(self) -> bool:
        """Whether a primary serves beside the new version."""
        return bool(self.baseline_storage_uri)

    def baseline_manifest_json(self) -> str:
        """The baseline's model manifest as JSON ("null" on a first deploy), for the gate's accuracy check."""
        from components.storage.published import read_published_manifest

        if not self.has_baseline:
            return "null"
        return json.dumps(read_published_manifest(self.baseline_storage_uri).to_dict(), indent=1)


def run_deploy(name: str, storage_uri: str, canary_percent: int = 0, platform: str = "local") -> Deployment:
    """Deploy the version as the canary; requests with `x-meshserve-track: canary` reach it whatever the weight."""
    target = platform_for(platform)
    version = target.deploy(name, storage_uri, canary_percent)
    status = target.status()
    primary = next((v for v in status["models"][name] if v["track"] == "primary"), None)
    return Deployment(status["router"]["http"], version.version, primary["storage_uri"] if primary else "")
