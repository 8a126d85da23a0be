"""The local platform's state: each model's rollout record, kept in a JSON file under a lock so that
steps running as separate processes (kfp.local tasks) agree."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from components.errors import PlatformError
from components.rollout.contract import Intent, ModelRecord, Version
from components.routing.spec import Endpoint
from components.serving.runtime import RunningVersion

STATE_DIR_ENV = "MESHSERVE_STATE_DIR"
MAX_REPLICAS = 16  # model-server processes per version on one machine


def state_dir() -> Path:
    """$MESHSERVE_STATE_DIR, default ./.meshserve (absolute)."""
    return Path(os.environ.get(STATE_DIR_ENV, ".meshserve")).resolve()


@dataclass(frozen=True)
class LocalDetails:
    """What the local platform keeps with a version: the model-server processes (replicas) serving it."""

    processes: tuple[RunningVersion, ...]

    def to_dict(self) -> dict:
        """The JSON form in platform.json (`replicas`, as it has always been stored)."""
        return {"replicas": [process.to_dict() for process in self.processes]}

    @classmethod
    def from_dict(cls, data: dict) -> LocalDetails:
        """The details platform.json keeps."""
        return cls(tuple(RunningVersion(**process) for process in data["replicas"]))


def processes_of(version: Version) -> tuple[RunningVersion, ...]:
    """The local processes (replicas) kept with a version."""
    if not isinstance(version.details, LocalDetails):
        raise TypeError(f"a local version keeps LocalDetails, not {type(version.details).__name__}")
    return version.details.processes


class PlatformState:
    """The StateStore of the local platform: {name: ModelRecord} in <state>/platform.json."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.file = self.root / "platform.json"

    @contextmanager
    def locked(self) -> Iterator[dict[str, ModelRecord]]:
        """Every record, exclusively; changes are saved when the block ends without an error."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "platform.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            models = self.read()
            yield models
            self._write({name: record for name, record in models.items() if not record.empty})

    @contextmanager
    def try_locked(self) -> Iterator[dict[str, ModelRecord] | None]:
        """Every record, exclusively, if no other command holds the lock now (else None: one is at work)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "platform.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            models = self.read()
            yield models
            self._write({name: record for name, record in models.items() if not record.empty})

    @contextmanager
    def transaction(self, name: str) -> Iterator[ModelRecord]:
        """One model's record (new and empty if none), saved when the block ends without an error."""
        with self.locked() as models:
            record = models.setdefault(name, ModelRecord())
            yield record

    def records(self) -> Iterator[tuple[str, ModelRecord]]:
        """Every model's record, as on disk."""
        yield from self.read().items()

    def read(self) -> dict[str, ModelRecord]:
        """The records as they are on disk."""
        if not self.file.is_file():
            return {}
        try:
            raw = json.loads(self.file.read_text())
            return {name: ModelRecord.from_dict(_upgraded(tracks), LocalDetails.from_dict)
                    for name, tracks in raw["models"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PlatformError("state", f"{self.file} is not a meshserve state file ({type(exc).__name__})",
                                "move it away; processes it started can be found with `pgrep -f components.serving`"
                                ) from None

    def _write(self, models: dict[str, ModelRecord]) -> None:
        data = {"models": {name: record.to_dict() for name, record in models.items()}}
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(self.file)


class FileJournal:
    """The local platform's journal: the intent of each change in progress, in <state>/journal.json, written
    (under the state's lock) before the change is made."""

    def __init__(self, root: Path):
        self.file = Path(root) / "journal.json"

    def begin(self, name: str, intent: Intent) -> None:
        """Record the intent durably (a rename, then the directory synced)."""
        self._write({**self._read(), name: intent.to_dict()})

    def pending(self, name: str) -> Intent | None:
        """The intent a killed command left for the model, if any."""
        found = self._read().get(name)
        return Intent(**found) if found else None

    def names(self) -> list[str]:
        """The models with a change pending."""
        return sorted(self._read())

    def end(self, name: str) -> None:
        """Forget the model's intent."""
        entries = self._read()
        if entries.pop(name, None) is not None:
            self._write(entries)

    def _read(self) -> dict:
        if not self.file.is_file():
            return {}
        try:
            return json.loads(self.file.read_text())
        except ValueError:
            raise PlatformError("state", f"{self.file} is not a meshserve journal",
                                "run `meshserve local down`, then deploy again") from None

    def _write(self, entries: dict) -> None:
        if not entries:
            self.file.unlink(missing_ok=True)
            return
        temporary = self.file.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump(entries, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.file)


def _upgraded(tracks: dict) -> dict:
    """A record from an earlier release: tracks held the process record itself (before the shared rollout
    rules), or a version's details held its one process (before replicas)."""
    upgraded = dict(tracks)
    for track in ("primary", "canary"):
        old = tracks.get(track)
        if old and "endpoint" not in old:
            endpoint = Endpoint(old["version"], f"127.0.0.1:{old['http_port']}", f"127.0.0.1:{old['grpc_port']}")
            upgraded[track] = {"name": old["name"], "version": old["version"], "model_digest": old["model_digest"],
                               "storage_uri": old["storage_uri"], "endpoint": asdict(endpoint),
                               "details": {"replicas": [old]}}
        elif old and "replicas" not in old["details"]:
            upgraded[track] = {**old, "details": {"replicas": [old["details"]]}}
    return upgraded
