"""The rollout steps' core: finish a rollout by promoting the canary or rolling it back, on either platform."""

from __future__ import annotations

from components.errors import InvalidInputError
from components.platform.protocol import ModelRef
from components.platform.registry import platform_for
from components.rollout.rules import NotOwnedError


def run_promote(name: str, platform: str = "local", namespace: str = "default", owner: str = "") -> str:
    """Promote the canary (`owner`: only if that run deployed it); returns the version now serving all traffic."""
    return platform_for(platform).promote(ModelRef(name, namespace), owner).version


def run_rollback(name: str, platform: str = "local", namespace: str = "default", owner: str = "") -> str:
    """Roll the canary back (`owner`: only if that run deployed it); returns the version still serving ('' when
    none is left)."""
    primary = platform_for(platform).rollback(ModelRef(name, namespace), owner)
    return primary.version if primary else ""


def run_finish(name: str, action: str, platform: str = "local", namespace: str = "default", owner: str = "") -> str:
    """Carry out the gate's action on the run's own canary: promote, rollback, or hold (leave it where it is)."""
    if action == "promote":
        return f"promoted {run_promote(name, platform, namespace, owner)}"
    if action == "rollback":
        kept = run_rollback(name, platform, namespace, owner)
        return f"rolled back to {kept}" if kept else "rolled back; no version left"
    if action == "hold":
        if owner:
            platform_for(platform).hold(ModelRef(name, namespace), owner)
        return "held: the canary stays at its weight until a person promotes or rolls it back"
    raise InvalidInputError("action", f"unknown action {action!r}", "use promote, rollback or hold")


def run_rollback_if_failed(name: str, failed: bool, platform: str = "local", namespace: str = "default",
                           owner: str = "") -> str:
    """The exit handler's step: after a failed run, roll back a candidate this run (`owner`) left half-deployed;
    another run's canary, or one deployed by hand, is left as it is."""
    if not failed:
        return "the run succeeded: nothing to undo"
    try:
        kept = run_rollback(name, platform, namespace, owner)
    except NotOwnedError as other:
        return f"nothing of this run's to roll back ({other.problem})"
    except InvalidInputError as refused:  # no canary (the run failed before deploying, or after finishing)
        return f"nothing to roll back ({refused.problem})"
    return f"rolled back the unfinished candidate; {kept or 'no version'} serves"
