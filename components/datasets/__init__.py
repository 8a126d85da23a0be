"""Datasets the train step knows by name: iris and digits (shipped with scikit-learn) and MNIST (IDX)."""

from components.datasets.base import Dataset, DatasetOptions
from components.datasets.registry import DATASET_NAMES, load_dataset

__all__ = ["DATASET_NAMES", "Dataset", "DatasetOptions", "load_dataset"]
