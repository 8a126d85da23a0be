"""Step inputs as Argo hands them over."""

from __future__ import annotations

from pathlib import Path


def given(path: Path | None) -> Path | None:
    """An optional input artifact's path, or None when Argo did not pass it (it then leaves no file)."""
    return path if path is not None and Path(path).exists() else None
