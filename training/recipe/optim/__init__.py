"""Optimisation for training: ScaledAdam, the Eden schedule, a running model average, and builders."""

from training_mt2kd.recipe.optim.builders import OPTIMIZER_NAMES, build_optimizer, build_scheduler
from training_mt2kd.recipe.optim.eden import Eden
from training_mt2kd.recipe.optim.model_average import ModelAverager
from training_mt2kd.recipe.optim.scaled_adam import GradientClipping, ScaledAdam

__all__ = [
    "OPTIMIZER_NAMES",
    "Eden",
    "GradientClipping",
    "ModelAverager",
    "ScaledAdam",
    "build_optimizer",
    "build_scheduler",
]
