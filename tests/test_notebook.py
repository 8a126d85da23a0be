"""The notebook's code cells run, in order, against this checkout."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.compile import REPO_ROOT


def test_notebook_cells_execute(tmp_path):
    notebook = json.loads((REPO_ROOT / "notebooks/train_and_upload.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    code = code.replace("/tmp/meshserve-notebook", str(tmp_path / "nb"))
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "MESHSERVE_STATE_DIR": str(tmp_path / "state")}, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert "pvc://my-models-pvc/notebook/v" in completed.stdout


def test_the_train_to_serve_notebook_runs_headless_in_a_jupyter_kernel(tmp_path):
    import time

    import nbformat
    from nbclient import NotebookClient

    path = REPO_ROOT / "notebooks/train_to_serve.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in notebook.cells if c.cell_type == "code")
    env = {**os.environ, "MESHSERVE_STATE_DIR": str(tmp_path / "state"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    for key in ("KFP_HOST", "ARGO_HOST"):
        env.pop(key, None)
    started = time.monotonic()
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO_ROOT)}})
    previous = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the test's environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
        from components.platform.local import LocalPlatform

        LocalPlatform(tmp_path / "state").down()  # if a cell failed before the notebook's own clean-up
    print(f"notebook executed in {time.monotonic() - started:.1f} s")
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "<th>check</th>" in html and any(word in html for word in ("PROMOTE", "ROLLBACK", "INCONCLUSIVE"))
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the latency plot
    text = "".join(o.get("text", "") for o in outputs)
    assert "KFP_HOST is not set" in text and "ARGO_HOST is not set" in text and "stopped: " in text
    second_run = text[text.rindex("\nmeshserve run: "):]  # the notebook's second run: a rollout beside a primary
    check_a_rollout_measured_side_by_side(second_run, tmp_path / "state")


def check_a_rollout_measured_side_by_side(summary: str, state: Path) -> None:
    """With a primary serving, the pipeline analysed the candidate against a fresh copy of the primary, at the same
    time, under real background traffic, from the first step (10%); what serves at the end is the verdict's pick.
    (The slow pipeline runs are shared with the notebook's; `meshserve run` itself is tests/test_local_run.py.)"""
    from datetime import datetime

    verdict = json.loads(Path(next(line.split()[-1] for line in summary.splitlines() if "verdict:" in line))
                         .read_text())
    assert verdict["baseline_model"]["model_digest"] != verdict["candidate_model"]["model_digest"]
    looks = verdict["analysis"]["looks_taken"]
    assert {role: facts["samples"] for role, facts in verdict["evidence"].items()} == {
        "candidate": 2500 * looks, "baseline": 2500 * looks}
    assert "relative_accuracy" in {check["name"] for check in verdict["checks"]}  # the deploy step's manifest
    assert "background traffic: " in summary and " at 50 qps" in summary  # the live guard's real traffic
    steps = [line.split() for line in summary.splitlines() if line.strip()[:1].isdigit()]
    assert [row[1] for row in steps][:1] == ["10%"]  # the first step: 10% of the traffic
    step_dir = sorted(state.rglob("progressive-rollout"))[-1]
    results = {role: json.loads((step_dir / f"{role}_result").read_text()) for role in ("candidate", "baseline")}
    assert results["candidate"]["target"]["headers"] == {"x-meshserve-track": "canary"}
    assert results["baseline"]["target"]["headers"] == {"x-meshserve-track": "baseline"}  # the fresh copy
    started = [datetime.fromisoformat(r["started_at"]) for r in results.values()]
    assert abs((started[0] - started[1]).total_seconds()) < 0.1  # measured side by side
    kept = verdict["candidate_model"] if verdict["action"] == "promote" else verdict["baseline_model"]
    serving = [line.split() for line in summary.splitlines() if line.startswith("    digits ")]
    assert serving == [["digits", "primary", "v" + kept["model_digest"][:12], "100%", "ready"]]
