"""Registration of the MT2KD classes with the transformers Auto classes."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioXVector,
    AutoModelForCTC,
)

from configuration_mt2kd import MT2KDConfig

from .modeling_mt2kd import MT2KDForAudioClassification, MT2KDForCTC, MT2KDForXVector, MT2KDModel

_AUTO_MODELS = (
    (AutoModel, MT2KDModel),
    (AutoModelForCTC, MT2KDForCTC),
    (AutoModelForAudioClassification, MT2KDForAudioClassification),
    (AutoModelForAudioXVector, MT2KDForXVector),
)


def register_auto_classes() -> None:
    """Register config and models (idempotent)."""
    AutoConfig.register(MT2KDConfig.model_type, MT2KDConfig, exist_ok=True)
    for auto_class, model_class in _AUTO_MODELS:
        auto_class.register(MT2KDConfig, model_class, exist_ok=True)
