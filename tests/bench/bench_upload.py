"""Upload throughput: a 100 MB model to a local S3-protocol server (moto) and to a local pvc:// claim.

Run: `.venv/bin/python tests/bench/bench_upload.py`. The pvc:// figure is the same machine's disk
path, measured in the same run, as a reference for the S3 one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from components.storage import upload_model  # noqa: E402
from tests.support.models import make_model_dir  # noqa: E402
from tests.support.servers import start_s3_server  # noqa: E402

SIZE = 100 * 1000 * 1000


def _timed_upload(model: Path, to: str) -> float:
    started = time.perf_counter()
    result = upload_model(model, to)
    assert result.published
    return time.perf_counter() - started


def main() -> None:
    """Upload the same 100 MB model (4 files) three ways and print seconds and MB/s."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        os.environ["MESHSERVE_STATE_DIR"] = str(scratch_path / "state")
        model = scratch_path / "model"
        make_model_dir(model, SIZE, files=4)
        server = start_s3_server(scratch_path)
        try:
            os.environ.update(server.env())
            server.client().create_bucket(Bucket="bench")
            rows = [
                ("pvc:// (local disk, reference)", _timed_upload(model, "pvc://models/bench")),
                ("s3:// moto on 127.0.0.1", _timed_upload(model, "s3://bench/models")),
            ]
            started = time.perf_counter()
            assert not upload_model(model, "s3://bench/models").published
            rows.append(("s3:// re-upload (no-op)", time.perf_counter() - started))
        finally:
            server.stop()
    print(f"{'target':34} {'seconds':>8} {'MB/s':>8}")
    for label, seconds in rows[:2]:
        print(f"{label:34} {seconds:8.2f} {SIZE / 1e6 / seconds:8.1f}")
    print(f"{rows[2][0]:34} {rows[2][1]:8.2f} {'-':>8}")
    print(f"s3 / pvc time ratio: {rows[1][1] / rows[0][1]:.1f}x (upload + read-back sha256 + server-side copy)")


if __name__ == "__main__":
    main()
