"""Dataset names to loaders. An unknown name is an error, never a fallback."""

from __future__ import annotations

from collections.abc import Callable

from components.datasets.base import Dataset, DatasetOptions
from components.datasets.mnist import load_mnist
from components.datasets.sklearn_builtin import load_digits, load_iris
from components.errors import InvalidInputError

_LOADERS: dict[str, Callable[[DatasetOptions], Dataset]] = {
    "iris": load_iris,
    "digits": load_digits,
    "mnist": load_mnist,
}
DATASET_NAMES = tuple(_LOADERS)


def load_dataset(name: str, options: DatasetOptions | None = None) -> Dataset:
    """Load a dataset by name."""
    loader = _LOADERS.get(name)
    if loader is None:
        raise InvalidInputError("dataset", f"unknown dataset {name!r}", f"use one of {', '.join(DATASET_NAMES)}")
    return loader(options or DatasetOptions())
