"""The promote and rollback steps as KFP v2 components."""

from kfp import dsl

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def promote(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic to the canary and retire the old primary; returns the serving version."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_promote

    with step_errors("promote"):
        return run_promote(name, platform, namespace)


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def rollback(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic back to the primary and stop the canary; returns the serving version."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_rollback

    with step_errors("rollback"):
        return run_rollback(name, platform, namespace)


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def finish_rollout(name: str, action: str, platform: str = "local", namespace: str = "default",
                   owner: str = "") -> str:
    """Carry out the gate's `action` output on the canary `owner` (the run) deployed: promote, rollback or hold."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_finish

    with step_errors("finish-rollout"):
        return run_finish(name, action, platform, namespace, owner)


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def roll_back_on_failure(name: str, status: dsl.PipelineTaskFinalStatus, platform: str = "local",
                         namespace: str = "default", owner: str = "") -> str:
    """The pipeline's exit task: if any step failed, roll back the candidate the run (`owner`) left
    half-deployed; another run's canary is left alone."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_rollback_if_failed

    with step_errors("roll-back-on-failure"):
        return run_rollback_if_failed(name, status.state != "SUCCEEDED", platform, namespace, owner)
