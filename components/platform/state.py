"""The local platform's state: which versions of which models run where, kept in a JSON file under a
lock so that steps running as separate processes (kfp.local tasks) agree."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.serving.runtime import RunningVersion

STATE_DIR_ENV = "MESHSERVE_STATE_DIR"


def state_dir() -> Path:
    """$MESHSERVE_STATE_DIR, default ./.meshserve (absolute)."""
    return Path(os.environ.get(STATE_DIR_ENV, ".meshserve")).resolve()


class PlatformState:
    """models: {name: {"primary": RunningVersion | None, "canary": RunningVersion | None}}."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.file = self.root / "platform.json"

    @contextmanager
    def locked(self) -> Iterator[dict]:
        """Exclusive access to the state; changes to the yielded dict are saved on exit without error."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "platform.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            models = self.read()
            yield models
            self._write(models)

    def read(self) -> dict[str, dict[str, RunningVersion | None]]:
        """The state as it is on disk."""
        if not self.file.is_file():
            return {}
        raw = json.loads(self.file.read_text())
        return {name: {track: RunningVersion(**v) if v else None for track, v in tracks.items()}
                for name, tracks in raw["models"].items()}

    def _write(self, models: dict) -> None:
        data = {"models": {name: {track: v.to_dict() if v else None for track, v in tracks.items()}
                           for name, tracks in models.items()}}
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(self.file)
