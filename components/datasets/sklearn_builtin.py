"""iris and digits, which scikit-learn ships on disk: no download, a seeded stratified split."""

from __future__ import annotations

from components.datasets.base import Dataset, DatasetOptions


def load_iris(options: DatasetOptions) -> Dataset:
    """The 150-sample, 4-feature iris flowers."""
    from sklearn.datasets import load_iris as sk_load

    bunch = sk_load()
    return _split("iris", bunch.data, bunch.target, tuple(bunch.target_names), options, None)


def load_digits(options: DatasetOptions) -> Dataset:
    """The 1,797 8x8 handwritten digits (pixel values 0 to 16)."""
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    names = tuple(str(d) for d in bunch.target_names)
    return _split("digits", bunch.data, bunch.target, names, options, (8, 8, 1))


def _split(name, features, labels, class_names, options: DatasetOptions, image_shape) -> Dataset:
    """Stratified train/test split, then optional seeded truncation of either side."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        features.astype(np.float32), labels.astype(np.int64),
        test_size=options.test_fraction, random_state=options.seed, stratify=labels,
    )
    return Dataset(
        name=name,
        x_train=x_train[: options.train_limit],
        y_train=y_train[: options.train_limit],
        x_test=x_test[: options.test_limit],
        y_test=y_test[: options.test_limit],
        class_names=class_names,
        image_shape=image_shape,
    )
