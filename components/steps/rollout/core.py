"""The rollout steps' core: finish a rollout by promoting the canary or rolling it back, on either platform."""

from __future__ import annotations

from components.errors import InvalidInputError
from components.platform.registry import platform_for


def run_promote(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Promote the canary; returns the version now serving all traffic."""
    target = platform_for(platform)
    return (target.promote(name) if platform == "local" else target.promote(name, namespace)).version


def run_rollback(name: str, platform: str = "local", namespace: str = "default") -> str:
    """Roll the canary back; returns the version still serving ('' when none is left)."""
    target = platform_for(platform)
    primary = target.rollback(name) if platform == "local" else target.rollback(name, namespace)
    return primary.version if primary else ""


def run_finish(name: str, action: str, platform: str = "local", namespace: str = "default") -> str:
    """Carry out the gate's action: promote, rollback, or hold (leave the canary where it is)."""
    if action == "promote":
        return f"promoted {run_promote(name, platform, namespace)}"
    if action == "rollback":
        kept = run_rollback(name, platform, namespace)
        return f"rolled back to {kept}" if kept else "rolled back; no version left"
    if action == "hold":
        return "held: the canary stays at its weight for a longer measurement"
    raise InvalidInputError("action", f"unknown action {action!r}", "use promote, rollback or hold")


def run_rollback_if_failed(name: str, failed: bool, platform: str = "local", namespace: str = "default") -> str:
    """The exit handler's step: after a failed run, roll back a candidate it left half-deployed."""
    if not failed:
        return "the run succeeded: nothing to undo"
    try:
        kept = run_rollback(name, platform, namespace)
    except InvalidInputError as refused:  # no canary (the run failed before deploying, or after finishing)
        return f"nothing to roll back ({refused.problem})"
    return f"rolled back the unfinished candidate; {kept or 'no version'} serves"
