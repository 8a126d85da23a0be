"""The notebook's code cells run, in order, against this checkout."""

import json
import os
import subprocess
import sys

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
