"""The train step's parameters, validated before any data is loaded."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from components.datasets import DATASET_NAMES, DatasetOptions
from components.errors import InvalidInputError

ALGORITHMS = {
    "sklearn": ("svm", "logreg", "random_forest"),
    "tensorflow": ("mlp", "cnn"),
}
DEFAULT_ALGORITHM = {"sklearn": "svm", "tensorflow": "mlp"}
# How each framework's model can be saved, the default first. A joblib file is a pickle: loading it runs the
# code it holds. skops' format loads only the types skops trusts (scikit-learn's and NumPy's).
SERIALIZATIONS = {"sklearn": ("joblib", "skops"), "tensorflow": ("tf-savedmodel", "triton")}
FRAMEWORKS = tuple(ALGORITHMS)
# The scikit-learn SVM is quadratic in the training rows; 10,000 MNIST rows train in well under a
# minute on 2 cores with ~96% test accuracy. Pass --train-limit 0 for all 60,000.
DEFAULT_MNIST_TRAIN_LIMIT = 10_000


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how; `validated()` fills defaults and refuses bad values."""

    framework: str
    dataset: str
    algorithm: str = ""
    seed: int = 0
    epochs: int = 5
    train_limit: int | None = None
    test_limit: int | None = None
    data_uri: str | None = None
    model_name: str = ""
    serialization: str = ""  # sklearn: joblib (default; a pickle, so loading runs it) or skops (restricted types);
    # tensorflow: tf-savedmodel (default; TF Serving's layout) or triton (Triton's layout and its config.pbtxt)

    def validated(self) -> TrainConfig:
        """Return a copy with defaults resolved; raise InvalidInputError naming the first bad field."""
        if self.framework not in ALGORITHMS:
            raise InvalidInputError(
                "framework", f"unknown framework {self.framework!r}", f"use one of {', '.join(FRAMEWORKS)}"
            )
        if self.dataset not in DATASET_NAMES:
            raise InvalidInputError(
                "dataset", f"unknown dataset {self.dataset!r}", f"use one of {', '.join(DATASET_NAMES)}"
            )
        algorithm = self.algorithm or DEFAULT_ALGORITHM[self.framework]
        if algorithm not in ALGORITHMS[self.framework]:
            choices = ", ".join(ALGORITHMS[self.framework])
            raise InvalidInputError(
                "algorithm", f"{algorithm!r} is not a {self.framework} algorithm", f"use one of {choices}"
            )
        for name in ("epochs", "train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidInputError(name, f"must not be negative (got {value})", "pass a positive number")
        if self.epochs == 0:
            raise InvalidInputError("epochs", "must be at least 1", "pass --epochs 1 or more")
        serializations = SERIALIZATIONS[self.framework]
        serialization = self.serialization or serializations[0]
        if serialization not in serializations:
            raise InvalidInputError("serialization", f"{self.framework} models cannot be saved as {serialization!r}",
                                    f"use one of {', '.join(serializations)}")
        if not 0 <= self.seed < 2**32:
            raise InvalidInputError("seed", f"{self.seed} is out of range", "pass 0 to 4294967295")
        return TrainConfig(
            **{**asdict(self), "algorithm": algorithm, "train_limit": self._train_limit(),
               "serialization": serialization,
               "test_limit": self.test_limit or None,
               "model_name": self.model_name or f"{self.dataset}-{self.framework}"}
        )

    def _train_limit(self) -> int | None:
        """0 means all rows; unset means the documented default for the dataset and framework."""
        if self.train_limit == 0:
            return None
        if self.train_limit is None and self.dataset == "mnist" and self.framework == "sklearn":
            return DEFAULT_MNIST_TRAIN_LIMIT
        return self.train_limit

    def dataset_options(self) -> DatasetOptions:
        """The loader options this configuration implies."""
        return DatasetOptions(
            seed=self.seed, train_limit=self.train_limit, test_limit=self.test_limit, data_uri=self.data_uri
        )

    def parameters(self) -> dict:
        """The training parameters recorded in the model manifest (no data location: it may be private)."""
        return {k: v for k, v in asdict(self).items() if k not in ("data_uri", "model_name")}
