"""Training times on real MNIST for the default scikit-learn model and the TensorFlow models.

Run: `.venv/bin/python tests/bench/bench_train.py` (or `make bench`). Prints one row per model.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from components.datasets.mnist import fetch_mnist  # noqa: E402
from components.training import TrainConfig, train_model  # noqa: E402

CASES = [
    ("sklearn svm (default: 10k train rows)", dict(framework="sklearn", dataset="mnist")),
    ("sklearn logreg (all 60k rows)", dict(framework="sklearn", dataset="mnist", algorithm="logreg", train_limit=0)),
    ("tensorflow mlp (60k rows, 5 epochs)", dict(framework="tensorflow", dataset="mnist", algorithm="mlp")),
    ("tensorflow cnn (60k rows, 2 epochs)", dict(framework="tensorflow", dataset="mnist", algorithm="cnn", epochs=2)),
]


def main(selected: list[str]) -> None:
    """Train each case (or those whose label contains an argument) on MNIST and print time and accuracy."""
    data_dir = fetch_mnist()
    print(f"{'model':40} {'wall s':>8} {'train rows':>10} {'accuracy':>9}")
    for label, params in CASES:
        if selected and not any(word in label for word in selected):
            continue
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            result = train_model(TrainConfig(data_uri=str(data_dir), **params), Path(scratch) / "model")
            wall = time.perf_counter() - started
        rows = result.manifest.dataset["n_train"]
        print(f"{label:40} {wall:8.1f} {rows:10d} {result.evaluation.accuracy:9.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
