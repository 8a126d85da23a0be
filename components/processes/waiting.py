"""Small waits the local processes need: until a condition holds (bounded), a free port on 127.0.0.1, and a
process gone after SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float, poll_s: float = 0.05) -> bool:
    """Poll `condition` until it is true or `timeout` seconds have passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 free now for `kind` (TCP by default, SOCK_DGRAM for UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminated(pid: int, timeout: float = 30) -> bool:
    """SIGTERM, then wait (at most `timeout` s) until the process is gone; True."""
    from components.processes.identity import start_time

    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: start_time(pid) is None, timeout)
    return True
