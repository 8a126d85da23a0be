"""The train step as a Hera script template (runner constructor: the image holds this package)."""

from pathlib import Path
from typing import Annotated

from hera.workflows import Artifact, Parameter, script

from components.steps.images import STEP_IMAGE


@script(constructor="runner", image=STEP_IMAGE, name="train")
def train(
    framework: str,
    dataset: str,
    model: Annotated[Path, Artifact(name="model", output=True)],
    metrics: Annotated[Path, Artifact(name="metrics", output=True)],
    accuracy: Annotated[Path, Parameter(name="accuracy", output=True)],
    model_digest: Annotated[Path, Parameter(name="model-digest", output=True)],
    algorithm: str = "",
    seed: int = 0,
    epochs: int = 5,
    train_limit: int = -1,
    test_limit: int = -1,
    data_uri: str = "",
    serialization: str = "",
) -> None:
    """Train and evaluate a model; outputs the model directory, its metrics, accuracy and digest.

    A limit of -1 means the dataset's documented default, 0 all rows (Argo parameters cannot be null).
    `serialization`: sklearn joblib (default; a pickle, loading runs it) or skops (only trusted types are built).
    """
    from components.steps.errors import step_errors
    from components.steps.train.core import run_train, write_metrics_json

    with step_errors("train"):
        result = run_train(framework=framework, dataset=dataset, model_dir=model, algorithm=algorithm, seed=seed,
                           epochs=epochs, train_limit=None if train_limit < 0 else train_limit,
                           test_limit=None if test_limit < 0 else test_limit, data_uri=data_uri,
                           serialization=serialization)
        write_metrics_json(result, metrics)
        accuracy.write_text(str(result.evaluation.accuracy))
        model_digest.write_text(result.manifest.model_digest)
