"""The model server's lean scikit-learn predict answers exactly what `Pipeline.predict` answers."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from components.datasets import DatasetOptions, load_dataset
from components.serving.sklearn_predict import lean_predict
from components.training import TrainConfig, train_model


@pytest.mark.parametrize("dataset", ["iris", "digits"])
@pytest.mark.parametrize("algorithm", ["svm", "logreg", "random_forest"])
def test_every_trained_algorithm_predicts_the_test_split_exactly(tmp_path, dataset, algorithm):
    import joblib

    model_dir = train_model(TrainConfig(framework="sklearn", dataset=dataset, algorithm=algorithm),
                            tmp_path / "m").model_dir
    pipeline = joblib.load(model_dir / "model.joblib")
    rows = load_dataset(dataset, DatasetOptions(seed=0)).x_test
    predict = lean_predict(pipeline)
    for batch in (rows, rows.astype(np.float32), rows[:1], rows[:2]):
        assert np.array_equal(predict(batch), pipeline.predict(batch))


def test_binary_logistic_regression_and_clipping_min_max(tmp_path):
    data = load_dataset("iris", DatasetOptions(seed=0))
    binary = data.y_train == 1
    pipeline = make_pipeline(MinMaxScaler(clip=True), StandardScaler(with_mean=False), LogisticRegression())
    pipeline.fit(data.x_train, binary)
    outside = np.vstack([data.x_test, data.x_test * 3 - 5])  # beyond the fitted range: clipped
    assert np.array_equal(lean_predict(pipeline)(outside), pipeline.predict(outside))


def test_an_estimator_without_a_lean_form_keeps_predict():
    data = load_dataset("iris", DatasetOptions(seed=0))
    pipeline = make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(data.x_train, data.y_train)
    assert np.array_equal(lean_predict(pipeline)(data.x_test), pipeline.predict(data.x_test))
