"""Held-out evaluation: accuracy, per-class precision and recall, and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Evaluation:
    """Scores of a classifier on the test split."""

    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    n_test: int

    def to_dict(self) -> dict:
        """The JSON form stored in the manifest."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "confusion_matrix": self.confusion_matrix,
            "class_names": self.class_names,
            "n_test": self.n_test,
        }

    def scalar_metrics(self) -> dict[str, float]:
        """Flat name → number pairs for KFP `Metrics`."""
        scalars = {"accuracy": self.accuracy}
        scalars["macro_precision"] = sum(self.precision.values()) / len(self.precision)
        scalars["macro_recall"] = sum(self.recall.values()) / len(self.recall)
        for name in self.class_names:
            scalars[f"precision_{name}"] = self.precision[name]
            scalars[f"recall_{name}"] = self.recall[name]
        return scalars


def evaluate(y_true, y_pred, class_names: tuple[str, ...]) -> Evaluation:
    """Score predictions against labels."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return Evaluation(
        accuracy=round(float(accuracy_score(y_true, y_pred)), 6),
        precision={n: round(float(p), 6) for n, p in zip(class_names, precision, strict=True)},
        recall={n: round(float(r), 6) for n, r in zip(class_names, recall, strict=True)},
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        class_names=list(class_names),
        n_test=int(len(y_true)),
    )
