"""The train step's core: fit a model on a named dataset, evaluate it, write a servable model directory."""

from components.training.config import FRAMEWORKS, TrainConfig
from components.training.core import TrainResult, train_model

__all__ = ["FRAMEWORKS", "TrainConfig", "TrainResult", "train_model"]
