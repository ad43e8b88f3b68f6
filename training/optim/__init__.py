"""Optimisation for training: ScaledAdam, the Eden schedule, a running model average, and builders."""

from .builders import OPTIMIZER_NAMES, build_optimizer, build_scheduler
from .eden import Eden
from .model_average import ModelAverager
from .scaled_adam import GradientClipping, ScaledAdam

__all__ = [
    "OPTIMIZER_NAMES",
    "Eden",
    "GradientClipping",
    "ModelAverager",
    "ScaledAdam",
    "build_optimizer",
    "build_scheduler",
]
