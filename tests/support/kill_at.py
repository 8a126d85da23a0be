"""Run a `meshserve` command that kills itself (SIGKILL, as kill -9 would) at one step of its work.

    python -m tests.support.kill_at STEP -- deploy --name m ...

The steps are the points where a local rollout has acted on one part and not yet on the next:
- server-loading: the model servers are launched, not yet ready or recorded;
- router-drain: nginx has been sent its new config (SIGHUP) and is draining the old worker;
- routes-saved: the router's routes file holds the new routes, the state does not yet;
- stopping: a replaced version's server has been sent SIGTERM;
- state-written: the state file holds the new record, the journal still the intent.
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(owner: type, method: str, before_dying=None) -> None:
    original = getattr(owner, method)

    def wrapped(self, *args, **kwargs):
        result = original(self, *args, **kwargs) if before_dying is None else before_dying(self, *args, **kwargs)
        if method != "_write" or self.root.joinpath("journal.json").is_file():
            _die()
        return result

    setattr(owner, method, wrapped)


def arm(step: str) -> None:
    """Make this process kill itself at `step`."""
    from components.platform.state import PlatformState
    from components.routing.nginx import NginxRouter
    from components.serving.runtime import LocalKServeRuntime

    if step == "server-loading":
        LocalKServeRuntime._await_ready = lambda self, running, process: _die()
    elif step == "router-drain":
        _after(NginxRouter, "_reload", lambda self, pid: os.kill(pid, signal.SIGHUP))
    elif step == "routes-saved":
        _after(NginxRouter, "_save")
    elif step == "stopping":
        _after(LocalKServeRuntime, "stop_pid", lambda self, pid, started=None: os.kill(pid, signal.SIGTERM))
    elif step == "state-written":
        _after(PlatformState, "_write")
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from pipelines.cli import main

    sys.exit(main(sys.argv[3:]))
