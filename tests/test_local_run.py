"""`meshserve run`, the main job, as `make run` invokes it."""

import os
import subprocess
import sys

from components.storage import read_published_manifest


def test_meshserve_run_publishes_and_summarises(isolated_state):
    env = dict(os.environ)
    completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "run"], capture_output=True, text=True,
                               env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = completed.stdout[completed.stdout.index("meshserve run:"):]
    storage_uri = next(line.split()[-1] for line in summary.splitlines() if "storageUri" in line)
    manifest = read_published_manifest(storage_uri)
    assert f"accuracy:     {manifest.metrics['accuracy']:.4f}" in summary
    assert manifest.dataset["name"] == "digits"
