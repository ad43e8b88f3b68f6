"""MT2KD configuration and named presets."""

from .configuration_mt2kd import MT2KDConfig, audioset_labels
from .presets import PRESETS

__all__ = ["MT2KDConfig", "PRESETS", "audioset_labels"]
