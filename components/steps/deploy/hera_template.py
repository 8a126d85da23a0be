"""The deploy step as a Hera script template."""

from pathlib import Path
from typing import Annotated, Optional

from hera.workflows import Artifact, Parameter, script

from components.steps.hera_storage import STORAGE_ENV_VARS, STORAGE_MOUNTS
from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="deploy", volume_mounts=STORAGE_MOUNTS, env=STORAGE_ENV_VARS)
def deploy(
    name: str,
    storage_uri: str,
    router_url: Annotated[Path, Parameter(name="router-url", output=True)],
    version: Annotated[Path, Parameter(name="version", output=True)],
    has_baseline: Annotated[Path, Parameter(name="has-baseline", output=True)],
    candidate_headers: Annotated[Path, Parameter(name="candidate-headers", output=True)],
    baseline_headers: Annotated[Path, Parameter(name="baseline-headers", output=True)],
    baseline_manifest: Annotated[Path, Artifact(name="baseline-manifest", output=True)],
    canary_percent: int = 0,
    platform: str = "local",
    namespace: str = "default",
    version_name: str = "",
    model_format: str = "sklearn",
    runtime: str = "kserve",
    router: str = "none",
    autoscaling: str = "none",
    min_replicas: int = 1,
    max_replicas: int = 1,
    scale_target: int = 0,
    scale_metric: str = "",
    metric_selector: Optional[dict] = None,
    cpu: str = "",
    memory: str = "",
    gpus: int = 0,
    node_selector: Optional[dict] = None,
    tolerations: Optional[list] = None,
    service_account: str = "",
    storage_secret: str = "",
    storage_options: Optional[dict] = None,
    runtime_options: Optional[dict] = None,
    router_options: Optional[dict] = None,
    scale_target_source: str = "",
    owner: str = "",
) -> None:
    """Deploy the version as the canary (the KFP component's inputs); outputs the URL and headers clients use,
    whether a primary runs beside it, and its manifest. `owner` (the workflow's uid) owns the canary."""
    import json

    from components.steps.deploy.core import cluster_spec_fields, run_deploy
    from components.steps.errors import step_errors

    with step_errors("deploy"):
        fields = cluster_spec_fields(namespace, version_name, model_format, runtime, router, autoscaling, min_replicas,
                                     max_replicas, scale_target, scale_metric, metric_selector, cpu, memory, gpus,
                                     node_selector, tolerations, service_account, storage_secret, storage_options,
                                     runtime_options, router_options, scale_target_source)
        deployment = run_deploy(name, storage_uri, canary_percent, platform, fields, owner)
        router_url.write_text(deployment.router_url)
        version.write_text(deployment.version)
        has_baseline.write_text(str(deployment.has_baseline).lower())
        candidate_headers.write_text(json.dumps(deployment.candidate_headers))
        baseline_headers.write_text(json.dumps(deployment.baseline_headers))
        baseline_manifest.write_text(deployment.baseline_manifest_json())
