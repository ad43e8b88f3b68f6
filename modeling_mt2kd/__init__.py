"""MT2KD models: a Zipformer2 encoder with ASR, audio-tagging, speaker and distillation heads.

Importing this package registers the model family with the transformers Auto classes.
"""

from configuration_mt2kd import MT2KDConfig

from .modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForDistillation,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
    MT2KDPreTrainedModel,
)
from .registration import register_auto_classes

register_auto_classes()

__all__ = [
    "MT2KDConfig",
    "MT2KDForAudioClassification",
    "MT2KDForCTC",
    "MT2KDForDistillation",
    "MT2KDForMultiTask",
    "MT2KDForRNNT",
    "MT2KDForXVector",
    "MT2KDModel",
    "MT2KDPreTrainedModel",
    "register_auto_classes",
]
