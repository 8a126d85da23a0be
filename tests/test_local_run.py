"""`meshserve run`, the main job, as `make run` invokes it: the whole train-to-serve pipeline."""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make run`/`make test` install it")


def test_first_run_deploys_gates_and_finishes_the_rollout(isolated_state):
    env = dict(os.environ)
    try:
        completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "run"], capture_output=True, text=True,
                                   env=env, timeout=600)
        assert completed.returncode == 0, completed.stderr[-3000:]
        summary = completed.stdout[completed.stdout.index("meshserve run:"):]
        verdict_path = next(line.split()[-1] for line in summary.splitlines() if "verdict:" in line)
        verdict = json.loads(open(verdict_path).read())
        assert verdict["decision"] in ("PROMOTE", "ROLLBACK", "INCONCLUSIVE")
        assert verdict["baseline_model"] is None and "baseline" not in verdict["evidence"]  # a first deploy
        assert verdict["evidence"]["candidate"]["samples"] == 1500
        status = subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "status", "--json"],
                                capture_output=True, text=True, env=env, check=True)
        versions = json.loads(status.stdout)["models"].get("digits", [])
        if verdict["action"] == "promote":
            assert [(v["track"], v["weight"], v["ready"]) for v in versions] == [("primary", 100, True)]
        else:
            assert versions == []  # rolled back: no version was serving before
    finally:
        subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "down"], env=env, capture_output=True)
