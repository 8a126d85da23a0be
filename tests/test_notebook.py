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
