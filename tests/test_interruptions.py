"""Interrupting a command leaves nothing half-done (issue 13, finding 4): what it started, it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.storage import upload_model
from pipelines.compile import REPO_ROOT


def model_servers(state: Path) -> list[int]:
    """PIDs of model servers serving from this state directory."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and "components.serving" in cmdline and str(state) in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_an_interrupted_deploy_stops_the_model_server_it_started(signum, code, digits_model, isolated_state):
    state = isolated_state
    env = {**os.environ, "MESHSERVE_STATE_DIR": str(state)}
    uri = upload_model(digits_model, "pvc://models/digits").storage_uri
    deploy = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "deploy", "--platform", "local", "--name",
                               "digits", "--storage-uri", uri], env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE,
                              text=True)
    deadline = time.monotonic() + 60
    while not model_servers(state) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model_servers(state), "the deploy did not start a model server"
    deploy.send_signal(signum)  # while the server is still loading: before it is recorded or routed
    assert deploy.wait(timeout=60) == code
    assert "interrupted" in deploy.stderr.read()
    deadline = time.monotonic() + 30
    while model_servers(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert model_servers(state) == []
    status = subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "status", "--json"], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert '"models": {}' in status.stdout
