"""The deploy step as a KFP v2 component."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def deploy(
    name: str,
    storage_uri: str,
    baseline_manifest: Output[Artifact],
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
) -> NamedTuple("DeployOutputs", [  # type: ignore[valid-type]  # KFP reads the outputs here
    ("router_url", str), ("version", str), ("has_baseline", str), ("candidate_headers", list),
    ("baseline_headers", list)]):
    """Deploy the version as the canary; if it fails to become ready, the primary keeps serving unchanged.

    platform local: a model-server process behind nginx (the cluster inputs do not apply). platform
    kubernetes: the deployment spec from the inputs below (the flags of `meshserve render`), applied with
    the pod's ServiceAccount. `has_baseline` is "true" or "false" (kfp.local does not evaluate boolean
    conditions); `candidate_headers` and `baseline_headers` reach each version at `router_url` (the
    `model` header and the track header, a Host header, or ModelMesh's model names);
    `baseline_manifest` is the primary's model manifest, for the gate ("null" on a first deploy). `owner` is
    the pipeline run's id: only that run's finish and exit steps may promote or roll back the canary.
    """
    from collections import namedtuple
    from pathlib import Path

    from components.steps.deploy.core import cluster_spec_fields, run_deploy
    from components.steps.errors import step_errors

    with step_errors("deploy"):
        fields = cluster_spec_fields(namespace, version_name, model_format, runtime, router, autoscaling, min_replicas,
                                     max_replicas, scale_target, scale_metric, metric_selector, cpu, memory, gpus,
                                     node_selector, tolerations, service_account, storage_secret, storage_options,
                                     runtime_options, router_options, scale_target_source)
        deployment = run_deploy(name, storage_uri, canary_percent, platform, fields, owner)
        Path(baseline_manifest.path).write_text(deployment.baseline_manifest_json())
        DeployOutputs = namedtuple("DeployOutputs", ["router_url", "version", "has_baseline", "candidate_headers",
                                               "baseline_headers"])
        return DeployOutputs(deployment.router_url, deployment.version, str(deployment.has_baseline).lower(),
                       deployment.candidate_headers, deployment.baseline_headers)
