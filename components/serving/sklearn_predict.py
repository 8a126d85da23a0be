"""Predict with a fitted scikit-learn pipeline at the cost of its arithmetic, not of its per-call checks.

`Pipeline.predict` on 2 rows spends ~0.3 ms, almost all of it validating the input again at every step
(check_array, feature names, dataframe detection, parameter checks). A server has already checked the
input (shape, numbers), so for the estimators meshserve trains the same arithmetic runs directly on the
fitted attributes: the same NumPy operations in the same order, and libsvm's own predict for SVC, so
the classes are exactly those `predict` returns (tests/test_sklearn_predict.py compares them on every
test split). Anything else keeps `predict`, with scikit-learn's finiteness and parameter checks off.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]
Transform = Callable[[np.ndarray], np.ndarray]


def lean_predict(estimator) -> Predict:
    """A function of float rows returning what `estimator.predict` returns for them."""
    steps = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    lean = [_lean_transform(step) for step in steps[:-1]]
    final = _lean_classifier(steps[-1])
    transforms = [transform for transform in lean if transform is not None]
    if final is None or len(transforms) < len(lean):
        return _checks_off(estimator)
    classify = final

    def predict(features: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(features, dtype=np.float64)
        for transform in transforms:
            rows = transform(rows)
        return classify(rows)

    return predict


def _checks_off(estimator) -> Predict:
    from sklearn import config_context

    def predict(features: np.ndarray) -> np.ndarray:
        with config_context(assume_finite=True, skip_parameter_validation=True):
            return estimator.predict(features)

    return predict


def _lean_transform(step) -> Transform | None:
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if step == "passthrough" or step is None:
        return lambda rows: rows
    if type(step) is MinMaxScaler:
        return _min_max(step)
    if type(step) is StandardScaler:
        return _standard(step)
    return None


def _min_max(scaler) -> Transform:
    low, high = scaler.feature_range

    def transform(rows: np.ndarray) -> np.ndarray:
        scaled = rows * scaler.scale_
        scaled += scaler.min_
        return np.clip(scaled, low, high, out=scaled) if scaler.clip else scaled

    return transform


def _standard(scaler) -> Transform:
    def transform(rows: np.ndarray) -> np.ndarray:
        scaled = rows.copy()
        if scaler.with_mean:
            scaled -= scaler.mean_
        if scaler.with_std:
            scaled /= scaler.scale_
        return scaled

    return transform


def _lean_classifier(step) -> Predict | None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if type(step) is SVC and not step._sparse and not callable(step.kernel) and step.kernel != "precomputed" \
            and not step.break_ties:
        return _svc(step)
    if type(step) is LogisticRegression:
        return _linear(step)
    return None


def _svc(svc) -> Predict:
    def predict(rows: np.ndarray) -> np.ndarray:
        return svc.classes_.take(np.asarray(svc._dense_predict(rows), dtype=np.intp))

    return predict


def _linear(model) -> Predict:
    def predict(rows: np.ndarray) -> np.ndarray:
        scores = rows @ model.coef_.T + model.intercept_
        indices = (scores.ravel() > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)
        return model.classes_[indices]

    return predict
