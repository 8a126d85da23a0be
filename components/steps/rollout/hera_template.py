"""The promote and rollback steps as Hera script templates."""

from hera.workflows import script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="promote")
def promote(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic to the canary and retire the old primary."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_promote

    with step_errors("promote"):
        return run_promote(name, platform, namespace)


@script(constructor="runner", image=STEP_IMAGE, name="rollback")
def rollback(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic back to the primary and stop the canary."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_rollback

    with step_errors("rollback"):
        return run_rollback(name, platform, namespace)


@script(constructor="runner", image=STEP_IMAGE, name="roll-back-on-failure")
def roll_back_on_failure(name: str, workflow_status: str, platform: str = "local", namespace: str = "default",
                         owner: str = "") -> str:
    """The workflow's exit handler: if it did not succeed, roll back the candidate it (`owner`) left
    half-deployed; another run's canary is left alone."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_rollback_if_failed

    with step_errors("roll-back-on-failure"):
        return run_rollback_if_failed(name, workflow_status != "Succeeded", platform, namespace, owner)


@script(constructor="runner", image=STEP_IMAGE, name="finish-rollout")
def finish_rollout(name: str, action: str, platform: str = "local", namespace: str = "default",
                   owner: str = "") -> str:
    """Carry out the gate's `action` output on the canary `owner` (the run) deployed: promote, rollback or hold."""
    from components.steps.errors import step_errors
    from components.steps.rollout.core import run_finish

    with step_errors("finish-rollout"):
        return run_finish(name, action, platform, namespace, owner)
