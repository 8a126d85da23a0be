"""The train step as a KFP v2 component (typed artifacts in and out)."""

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Metrics, Model, Output

from components.steps.images import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE, install_kfp_package=False)
def train(
    framework: str,
    dataset: str,
    model: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    manifest: Output[Artifact],
    algorithm: str = "",
    seed: int = 0,
    epochs: int = 5,
    train_limit: int = -1,
    test_limit: int = -1,
    data_uri: str = "",
    serialization: str = "",
):
    """Train and evaluate a model; write the servable model directory, its metrics and its manifest.

    A limit of -1 means the dataset's documented default, 0 all rows. `serialization`: sklearn joblib (default; a
    pickle, loading runs it) or skops (only trusted types are built when it loads).
    """
    from pathlib import Path

    from components.steps.errors import step_errors
    from components.steps.train.core import run_train

    with step_errors("train"):
        result = run_train(framework=framework, dataset=dataset, model_dir=Path(model.path), algorithm=algorithm,
                           seed=seed, epochs=epochs, train_limit=None if train_limit < 0 else train_limit,
                           test_limit=None if test_limit < 0 else test_limit,
                           data_uri=data_uri, serialization=serialization)
        for name, value in result.evaluation.scalar_metrics().items():
            metrics.log_metric(name, value)
        confusion.log_confusion_matrix(result.evaluation.class_names, result.evaluation.confusion_matrix)
        model.metadata.update({"framework": result.manifest.framework, "format": result.manifest.format,
                               "model_digest": result.manifest.model_digest})
        Path(manifest.path).write_text((Path(model.path) / "meshserve-model.json").read_text())
