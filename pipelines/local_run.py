"""`meshserve run`: the pipeline executed on this machine through kfp.local (no cluster needed).

Each task runs as a subprocess of this Python (SubprocessRunner, use_venv=False), so the steps share
the project's environment; pvc:// locations resolve under the local state directory.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

STATE_DIR_ENV = "MESHSERVE_STATE_DIR"


def state_dir() -> Path:
    """The local platform's state directory ($MESHSERVE_STATE_DIR, default ./.meshserve)."""
    return Path(os.environ.get(STATE_DIR_ENV, ".meshserve")).resolve()


def run_local_pipeline(dataset: str, framework: str, storage_prefix: str) -> dict:
    """Run the train → upload pipeline locally and print a summary; returns the pipeline's outputs."""
    from kfp import local

    from components.storage import read_published_manifest
    from pipelines.kfp_pipelines import train_upload_pipeline

    # The steps' image holds this very package; running it in this venv is the point.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task that uses custom",
                            category=RuntimeWarning)
    root = state_dir()
    os.environ[STATE_DIR_ENV] = str(root)  # kfp.local tasks inherit it and agree on pvc:// paths
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "kfp-local"),
               raise_on_error=True)
    started = time.perf_counter()
    run = train_upload_pipeline(dataset=dataset, framework=framework, storage_prefix=storage_prefix)
    storage_uri = run.output
    manifest = read_published_manifest(storage_uri)
    print(f"\nmeshserve run: {manifest.name} ({manifest.training['algorithm']}) trained and published in "
          f"{time.perf_counter() - started:.1f} s")
    print(f"  accuracy:     {manifest.metrics['accuracy']:.4f} on {manifest.metrics['n_test']} held-out samples")
    print(f"  model digest: {manifest.model_digest[:12]}")
    print(f"  storageUri:   {storage_uri}")
    print(f"  artifacts:    {root / 'kfp-local'}")
    return {"storage_uri": storage_uri, "model_digest": manifest.model_digest}
