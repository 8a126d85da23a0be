"""The deploy step as a Hera script template."""

from pathlib import Path
from typing import Annotated

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="deploy")
def deploy(
    name: str,
    storage_uri: str,
    router_url: Annotated[Path, Parameter(name="router-url", output=True)],
    has_baseline: Annotated[Path, Parameter(name="has-baseline", output=True)],
    baseline_manifest: Annotated[Path, Artifact(name="baseline-manifest", output=True)],
    canary_percent: int = 0,
    platform: str = "local",
) -> None:
    """Deploy the version as the canary; outputs the router URL, whether a primary runs beside it, and its manifest."""
    from components.steps.deploy.core import run_deploy

    deployment = run_deploy(name, storage_uri, canary_percent, platform)
    router_url.write_text(deployment.router_url)
    has_baseline.write_text(str(deployment.has_baseline).lower())
    baseline_manifest.write_text(deployment.baseline_manifest_json())
