"""The promote and rollback steps as Hera script templates."""

from hera.workflows import script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="promote")
def promote(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic to the canary and retire the old primary."""
    from components.steps.rollout.core import run_promote

    return run_promote(name, platform, namespace)


@script(constructor="runner", image=STEP_IMAGE, name="rollback")
def rollback(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Route all traffic back to the primary and stop the canary."""
    from components.steps.rollout.core import run_rollback

    return run_rollback(name, platform, namespace)
