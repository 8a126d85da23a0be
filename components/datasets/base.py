"""The in-memory dataset every trainer consumes, with a fingerprint that pins what was trained on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DatasetOptions:
    """How to load a dataset: where its files are, how much of it, which random split."""

    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    test_fraction: float = 0.25
    data_uri: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A train/test split of raw features (float32, unscaled) and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...] | None = None

    @property
    def n_features(self) -> int:
        """Features per sample, as the served model's flat input takes them."""
        return int(self.x_train.shape[1])

    def fingerprint(self) -> str:
        """sha256 over the name and the exact arrays, so two trainings on the same data agree."""
        digest = hashlib.sha256(self.name.encode())
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str((array.shape, array.dtype.str)).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def summary(self) -> dict:
        """What the model manifest records about the data."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "n_features": self.n_features,
            "classes": list(self.class_names),
        }
