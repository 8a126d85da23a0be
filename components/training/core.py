"""`train_model`: the plain-Python core of the train step, shared by KFP, Hera and the CLI."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from components.datasets import load_dataset
from components.manifest import MANIFEST_FILENAME, ModelManifest, digest_directory, write_manifest
from components.paths import replaceable_directory, staging_beside
from components.training.config import TrainConfig
from components.training.evaluation import Evaluation, evaluate
from components.training.trainers import trainer_for


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced: the model directory, its manifest and its scores."""

    model_dir: Path
    manifest: ModelManifest
    evaluation: Evaluation
    seconds: float


def train_model(config: TrainConfig, out_dir: Path) -> TrainResult:
    """Train, evaluate on the held-out split and write a servable model directory with its manifest.

    The directory is built next to `out_dir` and moved into place only when complete, so a failed run
    never leaves a half-written model where a later step would pick it up.
    """
    config = config.validated()
    out_dir = Path(out_dir)
    replaceable_directory("out", out_dir, _holds_a_model, "a model")  # before training: fail first
    started = time.perf_counter()
    dataset = load_dataset(config.dataset, config.dataset_options())
    trainer = trainer_for(config.framework, config.serialization)
    model = trainer.fit(dataset, config)
    evaluation = evaluate(dataset.y_test, trainer.predict(model, dataset.x_test), dataset.class_names)
    staging = staging_beside(out_dir)
    try:
        manifest = _save(trainer, model, staging, dataset, config, evaluation)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace_dir(staging, out_dir)
    return TrainResult(out_dir, manifest, evaluation, round(time.perf_counter() - started, 3))


def _save(trainer, model, staging: Path, dataset, config: TrainConfig, evaluation: Evaluation) -> ModelManifest:
    """Write the model and its manifest into the staging directory."""
    input_spec = trainer.save(model, staging, dataset)
    manifest = ModelManifest(
        name=config.model_name,
        framework=trainer.framework,
        format=trainer.model_format,
        input=input_spec,
        files=digest_directory(staging),
        training=config.parameters(),
        dataset=dataset.summary(),
        metrics=evaluation.to_dict(),
    )
    write_manifest(staging, manifest)
    return manifest


def _holds_a_model(directory: Path) -> bool:
    """An earlier run's model directory (its manifest is there), which a new run may replace."""
    return (directory / MANIFEST_FILENAME).is_file()


def _replace_dir(staging: Path, target: Path) -> None:
    """Swap the finished directory into place (KFP hands the step an existing, empty output dir)."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
