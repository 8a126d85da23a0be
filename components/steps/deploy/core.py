"""The deploy step's core: put a published version beside the primary as the canary, on either platform.

On the local platform the version runs as a model-server process behind nginx; on a cluster the
deployment spec (runtime, router, autoscaling, resources, placement, ...) says what to apply, and
the step runs with the pod's ServiceAccount (manifests/rbac).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.platform.protocol import DeployRequest
from components.platform.registry import platform_for


@dataclass(frozen=True)
class Deployment:
    """Where clients reach the new version, the headers that reach the candidate and the baseline there, and
    the baseline's storage, if any."""

    router_url: str
    version: str
    baseline_storage_uri: str  # "" on a first deploy
    candidate_headers: list[str]
    baseline_headers: list[str]

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


def cluster_spec_fields(namespace: str = "default", version: str = "", model_format: str = "sklearn",
                        runtime: str = "kserve", router: str = "none", autoscaling: str = "none",
                        min_replicas: int = 1, max_replicas: int = 1, scale_target: int = 0, scale_metric: str = "",
                        metric_selector: dict | None = None, cpu: str = "", memory: str = "", gpus: int = 0,
                        node_selector: dict | None = None, tolerations: list | None = None,
                        service_account: str = "", storage_secret: str = "", storage_options: dict | None = None,
                        runtime_options: dict | None = None, router_options: dict | None = None,
                        scale_target_source: str = "") -> dict:
    """The deployment spec's fields from a step's flat, typed inputs (the same names as `meshserve render`'s flags;
    `scale_target_source`: where `scale_target` came from, e.g. a `meshserve capacity` search)."""
    return {"namespace": namespace, "version": version, "model_format": model_format, "runtime": runtime,
            "router": router, "service_account": service_account,
            "autoscaling": {"kind": autoscaling, "min_replicas": min_replicas, "max_replicas": max_replicas,
                            "target": scale_target, "metric": scale_metric, "selector": metric_selector or {},
                            "target_source": scale_target_source},
            "resources": {"cpu": cpu, "memory": memory, "gpus": gpus},
            "placement": {"node_selector": node_selector or {}, "tolerations": list(tolerations or [])},
            "storage": {"secret": storage_secret, **(storage_options or {})},
            "runtime_options": runtime_options or {}, "router_options": router_options or {}}


def run_deploy(name: str, storage_uri: str, canary_percent: int = 0, platform: str = "local",
               cluster_fields: dict | None = None, owner: str = "") -> Deployment:
    """Deploy the version as the canary, owned by `owner` (the run's id). `cluster_fields` (see
    `cluster_spec_fields`) complete the deployment spec; the local platform stands in for the cluster's runtime
    and router. Requests with the candidate's headers reach it whatever its weight."""
    from components.deployment.spec import spec_from_mapping

    spec = spec_from_mapping({"name": name, "storage_uri": storage_uri, "canary_percent": canary_percent,
                              **(cluster_fields or cluster_spec_fields())})
    deployed = platform_for(platform).deploy(DeployRequest(spec, owner=owner))  # on a cluster: the pod's account
    return Deployment(deployed.candidate.url, deployed.version.version, deployed.baseline_storage_uri,
                      deployed.candidate.header_lines(), deployed.baseline.header_lines())
