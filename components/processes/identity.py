"""Which processes a state directory started: by the directory's identity and the process's start time.

A process meshserve starts carries `MESHSERVE_STATE_ID` (the state directory's device and inode) in its
environment, and its record keeps the process's start time (clock ticks since boot). A recorded PID is
ours only when both still hold: a reused PID has another start time, and a copied state directory (a
backup) has another inode, so its records never reach the live platform's processes. Nothing is matched
by a command-line prefix.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

STATE_ID_ENV = "MESHSERVE_STATE_ID"
SERVES_ENV = "MESHSERVE_SERVES"  # name/version, so that an unrecorded server can be named


def state_identity(root: Path) -> str:
    """The state directory's identity: `device:inode` (a copy or a new directory has another)."""
    status = Path(root).stat()
    return f"{status.st_dev}:{status.st_ino}"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def process_environment(pid: int) -> dict[str, str]:
    """The environment a process started with ({} when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def carries(pid: int, identity: str, started: int | None = None) -> bool:
    """True when `pid` is alive, was started with this state identity and, when `started` is given, at that
    start time."""
    now = start_time(pid)
    if now is None or (started is not None and now != started):
        return False
    return process_environment(pid).get(STATE_ID_ENV) == identity


def processes_carrying(identity: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Every live process started with this state identity, with its environment."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        environment = process_environment(int(entry.name))
        if environment.get(STATE_ID_ENV) == identity and start_time(int(entry.name)) is not None:
            yield int(entry.name), environment


def stop_carrier(pid: int, identity: str, started: int | None = None, grace_s: float = 20) -> None:
    """SIGTERM a process carrying `identity` (at that start time, when given), SIGKILL after `grace_s`; a process
    that does not carry it (another state directory's, a reused PID) is left alone."""
    if not carries(pid, identity, started):
        return
    started = start_time(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and carries(pid, identity, started):
        time.sleep(0.1)
    if carries(pid, identity, started):
        os.kill(pid, signal.SIGKILL)
