"""MT2KD configuration and named presets."""

from .configuration_mt2kd import IGNORE_INDEX, MIN_INPUT_FRAMES, MT2KDConfig, audioset_labels
from .presets import PRESETS

__all__ = ["IGNORE_INDEX", "MIN_INPUT_FRAMES", "MT2KDConfig", "PRESETS", "audioset_labels"]
