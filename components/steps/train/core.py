"""The train step's core, called by the CLI, the KFP component and the Hera template."""

from __future__ import annotations

import json
from pathlib import Path

from components.training import TrainConfig, TrainResult, train_model


def run_train(*, framework: str, dataset: str, model_dir: Path, algorithm: str = "", seed: int = 0,
              epochs: int = 5, train_limit: int | None = None, test_limit: int | None = None,
              data_uri: str | None = None, serialization: str = "") -> TrainResult:
    """Train a model and write its directory (model files + manifest) to `model_dir`."""
    from components.errors import InvalidInputError

    if not str(model_dir).strip() or Path(model_dir).resolve() == Path.cwd() and not Path(model_dir).name:
        raise InvalidInputError("out", "no model directory given", "pass --out DIR, a new or empty directory")
    config = TrainConfig(framework=framework, dataset=dataset, algorithm=algorithm, seed=seed, epochs=epochs,
                         train_limit=train_limit, test_limit=test_limit, data_uri=data_uri or None,
                         serialization=serialization)
    return train_model(config, model_dir)


def write_metrics_json(result: TrainResult, path: Path) -> None:
    """The evaluation as JSON (for Argo, which has no typed metrics artifact)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result.evaluation.to_dict(), indent=2) + "\n")
