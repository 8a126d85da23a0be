"""A local platform state directory with two published digits versions, shared by the local-platform tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def two_published_versions(root: Path) -> Iterator[list[str]]:
    """$MESHSERVE_STATE_DIR set to `root` with two published digits versions (seeds 0 and 1: different models);
    yields their storage URIs, then stops everything the platform started and restores the variable."""
    from components.platform.local import LocalPlatform
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    saved = os.environ.get("MESHSERVE_STATE_DIR")
    os.environ["MESHSERVE_STATE_DIR"] = str(root)
    try:
        yield [upload_model(train_model(TrainConfig(framework="sklearn", dataset="digits", seed=seed),
                                        root / f"m{seed}").model_dir, "pvc://models/digits").storage_uri
               for seed in (0, 1)]
    finally:
        LocalPlatform(root).down()
        if saved is None:
            os.environ.pop("MESHSERVE_STATE_DIR", None)
        else:
            os.environ["MESHSERVE_STATE_DIR"] = saved
