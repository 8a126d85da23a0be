"""The deploy step as a KFP v2 component."""

from typing import NamedTuple

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
) -> NamedTuple("DeployOutputs", [("router_url", str), ("version", str), ("has_baseline", str)]):
    """Deploy the version as the canary; if it fails to load, the primary keeps serving unchanged.

    `has_baseline` is "true" or "false" (a string: kfp.local does not evaluate boolean conditions);
    `baseline_manifest` is the primary's model manifest, for the gate ("null" on a first deploy).
    """
    from collections import namedtuple
    from pathlib import Path

    from components.steps.deploy.core import run_deploy

    deployment = run_deploy(name, storage_uri, canary_percent, platform)
    Path(baseline_manifest.path).write_text(deployment.baseline_manifest_json())
    outputs = namedtuple("DeployOutputs", ["router_url", "version", "has_baseline"])
    return outputs(deployment.router_url, deployment.version, str(deployment.has_baseline).lower())
