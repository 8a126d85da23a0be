"""The rollout steps' core: finish a rollout by promoting the canary or rolling it back."""

from __future__ import annotations

from components.platform.registry import platform_for


def run_promote(name: str, platform: str = "local") -> str:
    """Promote the canary; returns the version now serving all traffic."""
    return platform_for(platform).promote(name).version


def run_rollback(name: str, platform: str = "local") -> str:
    """Roll the canary back; returns the version still serving ('' when none is left)."""
    primary = platform_for(platform).rollback(name)
    return primary.version if primary else ""


def run_finish(name: str, action: str, platform: str = "local") -> str:
    """Carry out the gate's action: promote, rollback, or hold (leave the canary where it is)."""
    if action == "promote":
        return f"promoted {run_promote(name, platform)}"
    if action == "rollback":
        kept = run_rollback(name, platform)
        return f"rolled back to {kept}" if kept else "rolled back; no version left"
    if action == "hold":
        return "held: the canary stays at its weight for a longer measurement"
    from components.errors import InvalidInputError

    raise InvalidInputError("action", f"unknown action {action!r}", "use promote, rollback or hold")
