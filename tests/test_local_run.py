"""`meshserve run`, the main job, as `make run` invokes it: the whole train-to-serve pipeline."""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make run`/`make test` install it")


def test_first_run_deploys_analyses_and_finishes_the_rollout(isolated_state):
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
        trace = verdict["analysis"]
        assert verdict["evidence"]["candidate"]["samples"] == 2500 * trace["looks_taken"]  # 500 qps x 5 s a look
        assert trace["context"]["baseline"] == "none (first deploy)"
        assert f"analysis: {verdict['decision']} after {trace['looks_taken']} look(s)" in summary
        assert "step weight  verdict" in summary and "background traffic" not in summary  # nothing served yet
        status = subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "status", "--json"],
                                capture_output=True, text=True, env=env, check=True)
        versions = versions_of(json.loads(status.stdout), "digits")
        if verdict["action"] == "promote":
            assert [(v["track"], v["weight"], v["ready"]) for v in versions] == [("primary", 100, True)]
            record = json.loads((isolated_state / "platform.json").read_text())["models"]["digits"]
            assert record["primary"]["owner"].isdigit()  # the run's id (kfp.local: a random number below 10^8)
        else:
            assert versions == []  # rolled back: no version was serving before
    finally:
        subprocess.run([sys.executable, "-m", "pipelines.cli", "local", "down"], env=env, capture_output=True)


def test_task_progress_shows_one_line_per_task_start_and_end_and_a_failures_last_lines():
    """kfp.local's own lines (colours and all) go to the log whole; the terminal gets the task lines, and the
    last lines of a task that failed."""
    import io

    from pipelines.local_run import TaskProgress

    log, terminal = io.StringIO(), io.StringIO()
    progress = TaskProgress(log, terminal)
    kfp_output = ("12:00:00.001 - INFO - Executing task \x1b[96m'train'\x1b[0m\n"
                  "12:00:00.002 - INFO - Streamed logs:\n\n    {\"executor_input\": 1}\n"
                  "12:00:01.000 - INFO - Task \x1b[96m'train'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n"
                  "12:00:01.001 - INFO - Executing task \x1b[96m'upload'\x1b[0m\n"
                  "    {\n      \"inputs\": {\"model\": 1}\n    }\n"
                  "    meshserve upload: error: credentials: access denied; set AWS keys\n"
                  "12:00:02.000 - INFO - Task \x1b[96m'upload'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m\n")
    for piece in (kfp_output[:50], kfp_output[50:200], kfp_output[200:]):  # lines arrive split anyhow
        progress.write(piece)
    lines = terminal.getvalue().splitlines()
    assert log.getvalue() == kfp_output
    assert [line.split()[:2] for line in lines[:4]] == [["train", "started"], ["train", "success"],
                                                         ["upload", "started"], ["upload", "failure"]]
    assert lines[4:] == ["    | meshserve upload: error: credentials: access denied; set AWS keys"]
    assert "executor_input" not in terminal.getvalue()


def versions_of(status: dict, name: str) -> list[dict]:
    """A model's versions in `status --json` (none when it is not deployed)."""
    return next((model["versions"] for model in status["models"] if model["name"] == name), [])
